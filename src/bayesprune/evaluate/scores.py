"""Test accuracy: the deterministic (posterior-mean) network and the BBB Monte Carlo ensemble."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from bayesprune.model.bayes import BayesianMLP
from bayesprune.compress.footprint import footprint
from bayesprune.compress.prune import give_pruned_noise, global_prune, sparsity, structured_criteria, sweep_criteria
from bayesprune.compress.precision import precision_of, rounded
from bayesprune.model.activation import forward
from bayesprune.model.group_nj import UNIT_THRESHOLD, GroupNJMLP
from bayesprune.model.sparse_vd import SparseVDMLP

THRESHOLD_CRITERION = "log_alpha>3"  # sparse VD as trained: every weight above its threshold removed
UNIT_THRESHOLD_CRITERION = f"unit_log_alpha>{UNIT_THRESHOLD:g}"  # BC-GNJ as trained: every unit above it removed


@torch.no_grad()
def mean_logits(model: nn.Module, x: Tensor) -> Tensor:
    """Logits of the deterministic network: dropout off, BBB at its posterior mean."""
    model.eval()
    return model(x, sample=False) if isinstance(model, BayesianMLP) else model(x)


@torch.no_grad()
def ensemble_probabilities(model: BayesianMLP, x: Tensor, samples: int) -> Tensor:
    """Mean of the softmax over `samples` sampled networks."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    model.eval()
    total = torch.zeros(len(x), model.layers[-1].bias_mu.numel(), device=x.device)
    for _ in range(samples):
        total += torch.softmax(model(x, sample=True), dim=1)
    return total / samples


def accuracy(scores: Tensor, y: Tensor) -> float:
    """Share of rows whose highest score is the label."""
    return (scores.argmax(dim=1) == y).float().mean().item()


@torch.no_grad()
def study_scores(model: BayesianMLP, x: Tensor, samples: int) -> Tensor:
    """The study's BBB metric: mean log-softmax of `samples` sampled networks and the mean network."""
    total = torch.log_softmax(mean_logits(model, x), dim=1)
    for _ in range(samples):
        total += torch.log_softmax(model(x, sample=True), dim=1)
    return total / (samples + 1)


def pruned_accuracy(model: nn.Module, x: Tensor, y: Tensor, fraction: float) -> float:
    """Accuracy of the deterministic network on (x, y) after pruning a copy to `fraction` by its own criterion."""
    pruned = copy.deepcopy(model)
    global_prune(pruned, fraction, sweep_criteria(model)[0])
    return accuracy(mean_logits(pruned, x), y)


def evaluate(
    model: nn.Module, x: Tensor, y: Tensor, samples: int = 10, mixed_metric: bool = False
) -> dict[str, float | None]:
    """accuracy_mean for every model; accuracy_ensemble for BBB (None for deterministic models).

    With mixed_metric, accuracy_ensemble is the study's metric (`study_scores`) instead of the
    mean of the softmax of sampled networks.
    """
    result: dict[str, float | None] = {"accuracy_mean": accuracy(mean_logits(model, x), y), "accuracy_ensemble": None}
    if isinstance(model, BayesianMLP):
        scores = study_scores(model, x, samples) if mixed_metric else ensemble_probabilities(model, x, samples)
        result["accuracy_ensemble"] = accuracy(scores, y)
    return result


def scored_row(
    model: nn.Module, x: Tensor, y: Tensor, samples: int = 10, seed: int = 0, mixed_metric: bool = False
) -> dict[str, float | None]:
    """A pruned model's accuracies (`evaluate`, its noise seeded) and its `footprint`."""
    torch.manual_seed(seed)
    return {**evaluate(model, x, y, samples, mixed_metric), **footprint(model)}


def pruning_sweep(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    fractions: Sequence[float],
    include_bias: bool = False,
    samples: int = 10,
    seed: int = 0,
    deviations: Sequence[str] = (),
    primary_only: bool = False,
) -> list[dict[str, Any]]:
    """Accuracy and footprint of fresh copies of model pruned to each fraction by each criterion that applies.

    `deviations` switches on the study's pruning and scoring code paths (config.DEVIATIONS);
    `primary_only` keeps the model's own criterion (SNR for BBB) and skips magnitude. Sparse VD also gets
    a row for the network as trained, its weights above log alpha = 3 removed (`THRESHOLD_CRITERION`), BC-GNJ one
    with its units above the unit threshold removed (`UNIT_THRESHOLD_CRITERION`).
    """
    bayesian = isinstance(model, BayesianMLP)
    rows = []
    if isinstance(model, SparseVDMLP):
        removed = sparsity(model)  # the weights above log alpha = 3
        rows.append({"criterion": THRESHOLD_CRITERION, "fraction": removed, "achieved_sparsity": removed,
                     **scored_row(model, x, y, samples, seed)})
    if isinstance(model, GroupNJMLP):
        thresholded = copy.deepcopy(model)
        thresholded.remove_units()
        removed = sparsity(thresholded)
        rows.append({"criterion": UNIT_THRESHOLD_CRITERION, "fraction": removed, "achieved_sparsity": removed,
                     **scored_row(thresholded, x, y, samples, seed)})
    criteria = sweep_criteria(model, tuple(deviations)) + structured_criteria(model)
    for criterion in criteria[:1] if primary_only else criteria:
        for fraction in fractions:
            pruned = copy.deepcopy(model)
            achieved = global_prune(pruned, fraction, criterion, include_bias or criterion == "snr_rho")
            if bayesian and "pruned_rho_zero" in deviations:
                give_pruned_noise(pruned)
            scored = model if bayesian and "pruning_detached" in deviations else pruned
            rows.append({"criterion": criterion, "fraction": fraction, "achieved_sparsity": achieved,
                         **scored_row(scored, x, y, samples, seed, "mixed_metric" in deviations)})
    return rows


def with_validation_accuracy(rows: list[dict[str, Any]], validation_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sweep rows with `val_accuracy_mean`: the same network pruned the same way, scored on the validation
    split (NaN for a criterion or fraction the validation sweep did not score)."""
    scored = {(row["criterion"], row["fraction"]): row["accuracy_mean"] for row in validation_rows}
    return [{**row, "val_accuracy_mean": scored.get((row["criterion"], row["fraction"]), float("nan"))} for row in rows]


@torch.no_grad()
def precision_rows(model: GroupNJMLP, x: Tensor, y: Tensor, thresholds: Sequence[float] = (UNIT_THRESHOLD,)) -> list[dict[str, Any]]:
    """BC-GNJ with its units above each threshold removed, then its weights at the bit precision their posterior
    allows (`compress.precision`): per layer the mantissa bits, the compression after pruning and after precision
    reduction, and the test accuracy at full and at reduced precision (biases kept in full)."""
    rows = []
    for threshold in thresholds:
        pruned = copy.deepcopy(model).eval()
        units = pruned.remove_units(threshold)
        weights = [layer.posterior_weight() for layer in pruned.layers]
        precision = precision_of(weights, [layer.posterior_variance() for layer in pruned.layers])
        biases = [layer.bias_mu * layer.out_mask for layer in pruned.layers]
        rows.append({"threshold": threshold, "architecture": "-".join(map(str, units)),
                     **{f"bits_layer{k + 1}": bits for k, bits in enumerate(precision.mantissa)},
                     "exponent_bits": precision.exponent, "compression_pruned": precision.after_pruning,
                     "compression_precision": precision.after_precision,
                     "accuracy_full": accuracy(forward(x, weights, biases), y),
                     "accuracy_reduced": accuracy(forward(x, rounded(weights, precision), biases), y)})
    return rows
