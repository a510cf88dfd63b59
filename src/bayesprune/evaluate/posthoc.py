"""Cheap posteriors and calibration added after training and pruning, scored like every other prediction.

A run is judged where its epoch was chosen (`judged_fractions`): a run chosen for a target sparsity only there, a
run kept as trained only unpruned. At each such fraction the network is pruned by its own criterion, as in the
pruning sweep. Every model gets
temperature scaling (`evaluate.temperature`) of each predictive it has: the deterministic network's, and, for BBB
and dropout, the Monte Carlo predictive's (its log-probabilities divided by T). A point estimate (an MLP) also
gets both Laplace approximations of `evaluate.laplace`. Every choice (a temperature, a prior precision) is made
on the validation split; the test split and the shifted sets are only predicted. Each row is an uncertainty row
(`evaluate.uncertainty.uncertainty_row`) with its choice, its validation NLL (what a cheap posterior is chosen by),
and the seconds its fit and its predictions took.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from time import perf_counter
from typing import Any

import torch
from torch import Tensor, nn

from bayesprune.config import TARGET_RULES, TARGETS
from bayesprune.compress.prune import global_prune, sweep_criteria
from bayesprune.evaluate.laplace import STRUCTURES, LayerRemoved, fit_laplace, laplace_probabilities
from bayesprune.evaluate.passes import has_mc, mc_probabilities, mean_logits
from bayesprune.evaluate.temperature import fit_temperature, scaled_probabilities, validation_nll
from bayesprune.evaluate.uncertainty import nll, uncertainty_row
from bayesprune.model.models import MLP

Split = tuple[Tensor, Tensor]
TARGET_OF = dict(zip(TARGET_RULES, TARGETS))


def judged_fractions(select: str, fractions: Sequence[float]) -> list[float]:
    """The post-hoc fractions a run is judged at under its selection rule: the target it was chosen for, none
    pruned for one kept as trained (val_acc), every one for another rule."""
    if select in TARGET_OF:
        return [f for f in fractions if f == TARGET_OF[select]]
    if select == "val_acc":
        return [f for f in fractions if f == 0.0]
    return list(fractions)


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
        validation_logits = _predictive_logits(network, validation[0], prediction, samples)
        temperature = fit_temperature(validation_logits, validation[1])
        fitted = perf_counter()
        probs = scaled_probabilities(_predictive_logits(network, test[0], prediction, samples), temperature)
        outside = {name: scaled_probabilities(_predictive_logits(network, x, prediction, samples), temperature)
                   for name, x in shifted.items()}
        predicted = perf_counter()
        row, _ = uncertainty_row(probs, test[1], outside)
        rows.append({"posthoc": "temperature", "prediction": prediction, "temperature": temperature,
                     "val_nll": validation_nll(validation_logits, validation[1], temperature),
                     "fit_seconds": fitted - started, "predict_seconds": predicted - fitted, **row})
    return rows


def laplace_rows(network: MLP, train: Split, validation: Split, test: Split, shifted: dict[str, Tensor],
                 seed: int) -> list[dict[str, Any]]:
    """Each Laplace structure over the pruned point estimate, scored on test against the shifted sets (none, with a
    warning, where pruning removed a whole layer)."""
    rows = []
    for structure in STRUCTURES:
        torch.manual_seed(seed)
        try:
            fitted = fit_laplace(network, structure, train, validation)
        except LayerRemoved as removed:
            warnings.warn(f"no {structure} Laplace approximation at this fraction: {removed}", stacklevel=2)
            continue
        started = perf_counter()
        probs = laplace_probabilities(fitted, test[0])
        outside = {name: laplace_probabilities(fitted, x) for name, x in shifted.items()}
        predicted = perf_counter()
        row, _ = uncertainty_row(probs, test[1], outside)
        rows.append({"posthoc": f"laplace_{structure}", "prediction": "laplace",
                     "prior_precision": fitted.prior_precision,
                     "val_nll": nll(laplace_probabilities(fitted, validation[0]), validation[1]),
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
