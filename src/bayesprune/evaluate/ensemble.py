"""A deep ensemble of pruned point estimates (Lakshminarayanan et al. 2017): members trained alike from different
seeds, each pruned by its own criterion and its own weights, their deterministic softmax averaged."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from time import perf_counter
from typing import Any

import torch
from torch import Tensor, nn

from bayesprune.compress.prune import global_prune, sweep_criteria
from bayesprune.evaluate.passes import mean_logits
from bayesprune.evaluate.uncertainty import nll, uncertainty_row

ENSEMBLE_SIZE = 5


def ensemble_predictive(members: Sequence[nn.Module], x: Tensor) -> Tensor:
    """The ensemble's class probabilities: the mean of its members' softmax on x."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    return torch.stack([torch.softmax(mean_logits(member, x), dim=1) for member in members]).mean(0)


def pruned_members(members: Sequence[nn.Module], fraction: float) -> list[nn.Module]:
    """Copies of the members, each pruned to `fraction` by its own criterion and its own weights."""
    pruned = []
    for member in members:
        network = copy.deepcopy(member)
        global_prune(network, fraction, sweep_criteria(member)[0])
        pruned.append(network)
    return pruned


def ensemble_rows(members: Sequence[nn.Module], fractions: Sequence[float], validation: tuple[Tensor, Tensor],
                  test: tuple[Tensor, Tensor], shifted: dict[str, Tensor]) -> list[dict[str, Any]]:
    """The ensemble's uncertainty row on test against each shifted set at each fraction, with its validation NLL
    and the seconds its test predictions took."""
    if len(members) != ENSEMBLE_SIZE:
        raise ValueError(f"an ensemble here has {ENSEMBLE_SIZE} members, got {len(members)}")
    rows = []
    for fraction in fractions:
        pruned = pruned_members(members, fraction)
        started = perf_counter()
        probs = ensemble_predictive(pruned, test[0])
        outside = {name: ensemble_predictive(pruned, x) for name, x in shifted.items()}
        predicted = perf_counter()
        row, _ = uncertainty_row(probs, test[1], outside)
        rows.append({"criterion": sweep_criteria(members[0])[0], "fraction": fraction, "members": len(members),
                     "val_nll": nll(ensemble_predictive(pruned, validation[0]), validation[1]),
                     "predict_seconds": predicted - started, **row})
    return rows
