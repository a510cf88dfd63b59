"""Does a (pruned) network know what it does not know: calibration and out-of-distribution detection from the
model's own predictive distribution.

Predictions: `deterministic` is the network as practitioners deploy it (BBB at its posterior mean, dropout off);
`mc` averages the softmax of `samples` stochastic passes: BBB's posterior samples (a pruned weight has its mean
and its noise masked, so no sample ever draws it) or MC dropout. Calibration: NLL, Brier score, and the expected
calibration error over 15 equal-width confidence bins with its largest bin gap. Out-of-distribution detection:
the positive class is the shifted images, scored by predictive entropy and by 1 - max softmax probability;
AUROC, and the share of in-distribution test images flagged at the threshold that catches 95 % of the shifted
ones (FPR at 95 % TPR).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from bayesprune.evaluate.passes import PREDICTIONS, has_mc, mc_probabilities, mean_logits

ECE_BINS = 15
OOD_SCORES = ("entropy", "maxprob")


def probabilities(model: nn.Module, x: Tensor, prediction: str, samples: int) -> Tensor:
    """Class probabilities of the deterministic network or of its Monte Carlo average (see the module docstring)."""
    if prediction == "deterministic":
        return torch.softmax(mean_logits(model, x), dim=1)
    if prediction != "mc" or not has_mc(model):
        raise ValueError(f"prediction {prediction!r} does not apply to {type(model).__name__}; valid choices: "
                         f"{', '.join(PREDICTIONS if has_mc(model) else PREDICTIONS[:1])}")
    return mc_probabilities(model, x, samples)


def confidence_bins(probs: Tensor, y: Tensor, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """The reliability diagram: per equal-width bin of top confidence, its share of the images, their mean
    confidence and their accuracy (empty bins left out)."""
    confidence, predicted = probs.double().max(dim=1)
    correct = (predicted == y).double()
    which = torch.clamp((confidence * bins).long(), max=bins - 1)
    rows = []
    for b in range(bins):
        members = which == b
        if members.any():
            rows.append({"bin": b, "share": members.double().mean().item(),
                         "confidence": confidence[members].mean().item(), "bin_accuracy": correct[members].mean().item()})
    return rows


def nll(probs: Tensor, y: Tensor) -> float:
    """Mean negative log-likelihood of labels y, probabilities floored at 1e-12."""
    return -torch.log(probs.double()[torch.arange(len(y)), y].clamp_min(1e-12)).mean().item()


def calibration(probs: Tensor, y: Tensor, bins: int = ECE_BINS) -> dict[str, float]:
    """Accuracy, NLL, Brier score, and the expected calibration error over equal-width confidence bins with its
    largest bin gap |accuracy - confidence|."""
    probs = probs.double()
    correct = (probs.argmax(dim=1) == y).double()
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).double()
    brier = ((probs - onehot) ** 2).sum(dim=1).mean()
    gaps = [(row["share"], abs(row["bin_accuracy"] - row["confidence"])) for row in confidence_bins(probs, y, bins)]
    return {"accuracy": correct.mean().item(), "nll": nll(probs, y), "brier": brier.item(),
            "ece": sum(share * gap for share, gap in gaps), "ece_max_gap": max(gap for _, gap in gaps)}


def ood_score(probs: Tensor, score: str) -> Tensor:
    """How out-of-distribution each image looks: predictive entropy, or 1 - max softmax probability."""
    if score == "entropy":
        return -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)
    if score == "maxprob":
        return 1.0 - probs.max(dim=1).values
    raise ValueError(f"unknown OOD score {score!r}; valid choices: {', '.join(OOD_SCORES)}")


def auroc(inside: Tensor, outside: Tensor) -> float:
    """Area under the ROC curve of telling `outside` (positive) from `inside` by a higher score, ties counted half
    (the Mann-Whitney statistic)."""
    scores = torch.cat([inside, outside]).double()
    ranks = torch.empty_like(scores)
    order = torch.argsort(scores, stable=True)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    unique, inverse = torch.unique(scores, return_inverse=True)
    mean_rank = torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, ranks)
    mean_rank /= torch.bincount(inverse, minlength=len(unique)).double()
    positive_ranks = mean_rank[inverse][len(inside):].sum()
    n_out, n_in = len(outside), len(inside)
    return ((positive_ranks - n_out * (n_out + 1) / 2) / (n_out * n_in)).item()


def fpr_at_tpr(inside: Tensor, outside: Tensor, tpr: float = 0.95) -> float:
    """Share of in-distribution images at or above the threshold that flags `tpr` of the shifted images."""
    threshold = torch.quantile(outside.double(), 1.0 - tpr)
    return (inside.double() >= threshold).double().mean().item()


def uncertainty_row(
    probs: Tensor, y: Tensor, shifted: dict[str, Tensor]
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Calibration of the test probabilities and OOD detection against each shifted set's probabilities; and the
    reliability diagram's bins."""
    row: dict[str, Any] = calibration(probs, y)
    for name, outside in shifted.items():
        for score in OOD_SCORES:
            inside_score, outside_score = ood_score(probs, score), ood_score(outside, score)
            row[f"auroc_{score}_{name}"] = auroc(inside_score, outside_score)
            row[f"fpr95_{score}_{name}"] = fpr_at_tpr(inside_score, outside_score)
    return row, confidence_bins(probs, y)
