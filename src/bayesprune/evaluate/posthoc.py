"""Cheap posteriors and calibration added after training and pruning, scored like every other prediction.

At each post-hoc fraction the network is pruned by its own criterion, as in the pruning sweep. Every model gets
temperature scaling (`evaluate.temperature`) of each predictive it has: the deterministic network's, and, for BBB
and dropout, the Monte Carlo predictive's (its log-probabilities divided by T). A point estimate (an MLP) also
gets both Laplace approximations of `evaluate.laplace`. Every choice (a temperature, a prior precision) is made
on the validation split; the test split and the shifted sets are only predicted. Each row is an uncertainty row
(`evaluate.uncertainty.uncertainty_row`) with its choice and the seconds its fit and its predictions took.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from time import perf_counter
from typing import Any

import torch
from torch import Tensor, nn

from bayesprune.compress.prune import global_prune, sweep_criteria
from bayesprune.evaluate.laplace import STRUCTURES, fit_laplace, laplace_probabilities
from bayesprune.evaluate.passes import has_mc, mc_probabilities, mean_logits
from bayesprune.evaluate.temperature import fit_temperature, scaled_probabilities
from bayesprune.evaluate.uncertainty import uncertainty_row
from bayesprune.model.models import MLP

Split = tuple[Tensor, Tensor]


def log_probabilities(probs: Tensor) -> Tensor:
    """Log of a predictive's probabilities, floored at 1e-12: the logits temperature scaling divides."""
    return torch.log(probs.clamp_min(1e-12))


def _predictive_logits(network: nn.Module, x: Tensor, prediction: str, samples: int) -> Tensor:
    """Logits of the deterministic network, or log-probabilities of its Monte Carlo predictive."""
    if prediction == "deterministic":
        return mean_logits(network, x)
    return log_probabilities(mc_probabilities(network, x, samples))


def temperature_rows(network: nn.Module, validation: Split, test: Split, shifted: dict[str, Tensor],
                     samples: int, seed: int) -> list[dict[str, Any]]:
    """Each predictive of the network temperature-scaled on validation, scored on test against the shifted sets."""
    rows = []
    for prediction in ("deterministic", "mc") if has_mc(network) else ("deterministic",):
        torch.manual_seed(seed)
        started = perf_counter()
        temperature = fit_temperature(_predictive_logits(network, validation[0], prediction, samples), validation[1])
        fitted = perf_counter()
        probs = scaled_probabilities(_predictive_logits(network, test[0], prediction, samples), temperature)
        outside = {name: scaled_probabilities(_predictive_logits(network, x, prediction, samples), temperature)
                   for name, x in shifted.items()}
        predicted = perf_counter()
        row, _ = uncertainty_row(probs, test[1], outside)
        rows.append({"posthoc": "temperature", "prediction": prediction, "temperature": temperature,
                     "fit_seconds": fitted - started, "predict_seconds": predicted - fitted, **row})
    return rows


def laplace_rows(network: MLP, train: Split, validation: Split, test: Split, shifted: dict[str, Tensor],
                 seed: int) -> list[dict[str, Any]]:
    """Each Laplace structure over the pruned point estimate, scored on test against the shifted sets."""
    rows = []
    for structure in STRUCTURES:
        torch.manual_seed(seed)
        fitted = fit_laplace(network, structure, train, validation)
        started = perf_counter()
        probs = laplace_probabilities(fitted, test[0])
        outside = {name: laplace_probabilities(fitted, x) for name, x in shifted.items()}
        predicted = perf_counter()
        row, _ = uncertainty_row(probs, test[1], outside)
        rows.append({"posthoc": f"laplace_{structure}", "prediction": "laplace",
                     "prior_precision": fitted.prior_precision,
                     "fit_seconds": fitted.fit_seconds + fitted.search_seconds,
                     "predict_seconds": predicted - started, **row})
    return rows


def posthoc_rows(model: nn.Module, fractions: Sequence[float], train: Split, validation: Split | None, test: Split,
                 shifted: dict[str, Tensor], samples: int = 10, seed: int = 0) -> list[dict[str, Any]]:
    """Temperature scaling for every model and Laplace approximations for point estimates, at each fraction
    pruned by the model's own criterion (see the module docstring)."""
    if validation is None or len(validation[0]) == 0:
        raise ValueError("post-hoc calibration and Laplace approximations choose on a validation split; this run "
                         "has none (set validation > 0 in its config)")
    criterion = sweep_criteria(model)[0]
    rows: list[dict[str, Any]] = []
    for fraction in fractions:
        network = copy.deepcopy(model)
        achieved = global_prune(network, fraction, criterion)
        keys = {"criterion": criterion, "fraction": fraction, "achieved_sparsity": achieved}
        found = temperature_rows(network, validation, test, shifted, samples, seed)
        if isinstance(model, MLP):
            found += laplace_rows(network, train, validation, test, shifted, seed)
        rows += [{**keys, **row} for row in found]
    return rows
