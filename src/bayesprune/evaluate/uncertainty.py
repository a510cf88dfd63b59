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

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from bayesprune.compress.prune import global_prune
from bayesprune.evaluate.scores import ensemble_probabilities, mean_logits
from bayesprune.model.bayes import BayesianMLP

ECE_BINS = 15
PREDICTIONS = ("deterministic", "mc")
OOD_SCORES = ("entropy", "maxprob")


def has_mc(model: nn.Module) -> bool:
    """Whether a model has a stochastic predictive distribution: BBB's posterior, or dropout layers."""
    return isinstance(model, BayesianMLP) or any(isinstance(m, nn.Dropout) for m in model.modules())


@torch.no_grad()
def mc_dropout_probabilities(model: nn.Module, x: Tensor, samples: int) -> Tensor:
    """Mean softmax of `samples` passes with dropout on (the rest of the network in evaluation mode)."""
    model.eval()
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for layer in dropouts:
        layer.train()
    try:
        return torch.stack([torch.softmax(model(x), dim=1) for _ in range(samples)]).mean(0)
    finally:
        model.eval()


def probabilities(model: nn.Module, x: Tensor, prediction: str, samples: int) -> Tensor:
    """Class probabilities of the deterministic network or of its Monte Carlo average (see the module docstring)."""
    if prediction == "deterministic":
        return torch.softmax(mean_logits(model, x), dim=1)
    if prediction != "mc" or not has_mc(model):
        raise ValueError(f"prediction {prediction!r} does not apply to {type(model).__name__}; valid choices: "
                         f"{', '.join(PREDICTIONS if has_mc(model) else PREDICTIONS[:1])}")
    if isinstance(model, BayesianMLP):
        return ensemble_probabilities(model, x, samples)
    return mc_dropout_probabilities(model, x, samples)


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


def calibration(probs: Tensor, y: Tensor, bins: int = ECE_BINS) -> dict[str, float]:
    """Accuracy, NLL, Brier score, and the expected calibration error over equal-width confidence bins with its
    largest bin gap |accuracy - confidence|."""
    probs = probs.double()
    correct = (probs.argmax(dim=1) == y).double()
    nll = -torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean()
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).double()
    brier = ((probs - onehot) ** 2).sum(dim=1).mean()
    gaps = [(row["share"], abs(row["bin_accuracy"] - row["confidence"])) for row in confidence_bins(probs, y, bins)]
    return {"accuracy": correct.mean().item(), "nll": nll.item(), "brier": brier.item(),
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
    model: nn.Module, test: tuple[Tensor, Tensor], shifted: dict[str, Tensor], prediction: str, samples: int
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Calibration on the test images and OOD detection against each shifted set, for one prediction; and the
    reliability diagram's bins."""
    x, y = test
    probs = probabilities(model, x, prediction, samples)
    row: dict[str, Any] = {"prediction": prediction, **calibration(probs, y)}
    for name, images in shifted.items():
        outside = probabilities(model, images, prediction, samples)
        for score in OOD_SCORES:
            inside_score, outside_score = ood_score(probs, score), ood_score(outside, score)
            row[f"auroc_{score}_{name}"] = auroc(inside_score, outside_score)
            row[f"fpr95_{score}_{name}"] = fpr_at_tpr(inside_score, outside_score)
    return row, confidence_bins(probs, y)


def uncertainty_sweep(
    model: nn.Module, test: tuple[Tensor, Tensor], shifted: dict[str, Tensor], fractions: Sequence[float],
    criteria: Sequence[str], samples: int, seed: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`uncertainty_row` of fresh copies of model pruned to each fraction by each criterion, for every prediction
    the model has (the noise of the Monte Carlo passes seeded alike for every row); and the reliability
    diagrams' bins of the same rows."""
    rows, bins = [], []
    for criterion in criteria:
        for fraction in fractions:
            pruned = copy.deepcopy(model)
            achieved = global_prune(pruned, fraction, criterion)
            for prediction in PREDICTIONS if has_mc(model) else PREDICTIONS[:1]:
                torch.manual_seed(seed)
                row, diagram = uncertainty_row(pruned, test, shifted, prediction, samples)
                keys = {"criterion": criterion, "fraction": fraction, "prediction": prediction}
                rows.append({**keys, "achieved_sparsity": achieved, **row})
                bins += [{**keys, **b} for b in diagram]
    return rows, bins
