"""Scoring pruned networks: test accuracy of the deterministic (posterior-mean) network and of BBB's Monte Carlo
ensemble, validation accuracy, and calibration and out-of-distribution detection (`evaluate.uncertainty`), every
network pruned once per criterion and fraction and every (image set, prediction) computed once for all of them."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import torch
from torch import Tensor, nn

from bayesprune.model.bayes import BayesianMLP
from bayesprune.compress.footprint import footprint
from bayesprune.compress.prune import (give_pruned_noise, global_prune, model_kind, own_criteria, sparsity,
                                       structured_criteria, sweep_criteria)
from bayesprune.compress.precision import precision_of, rounded
from bayesprune.evaluate.passes import (PREDICTIONS, dropout_noise, dropout_noise_bytes, ensemble_probabilities,
                                        first_activation, has_mc, mc_probabilities, mean_logits, shares_first_layer)
from bayesprune.evaluate.uncertainty import uncertainty_row
from bayesprune.model.activation import forward
from bayesprune.model.group_nj import UNIT_THRESHOLD, GroupNJMLP
from bayesprune.model.models import MLP
from bayesprune.model.sparse_vd import SparseVDMLP

THRESHOLD_CRITERION = "log_alpha>3"  # sparse VD as trained: every weight above its threshold removed
UNIT_THRESHOLD_CRITERION = f"unit_log_alpha>{UNIT_THRESHOLD:g}"  # BC-GNJ as trained: every unit above it removed
SHARED_NOISE_BYTES = 2**31  # a sweep keeps MC dropout's masks for every pruned network up to this size


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


STUDY_SCORING = ("pruned_rho_zero", "pruning_detached", "mixed_metric")  # deviations that change what is scored


@dataclass
class Parts:
    """Seconds spent in each named part of a computation."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        """Add the time the block takes to the part `name`."""
        started = perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + perf_counter() - started


SharedNoise = dict[str, tuple[list[list[Tensor]], Tensor]]  # per image set: MC dropout's masks, the generator after


class NetworkScores:
    """One network's predictions on named image sets, each computed once: deterministic logits per set, and the
    Monte Carlo predictive of the sets in `mc_sets`, drawn in their order from one seeded generator (so the first
    set's samples are those a seeded ensemble of it alone draws); a set is drawn only when asked for. MC dropout's
    masks, which do not depend on the weights, come from `shared_noise` where given (filled by the first network
    that draws them). Where `monte_carlo` says its Monte Carlo passes will be drawn, MC dropout's first layer on a
    Monte Carlo set is computed once for the deterministic pass and those passes, and kept until they are drawn."""

    def __init__(self, network: nn.Module, sets: dict[str, Tensor], mc_sets: Sequence[str], samples: int, seed: int,
                 parts: Parts, shared_noise: SharedNoise | None = None, monte_carlo: bool = True) -> None:
        self.network, self.sets, self.mc_sets, self.samples, self.seed = network, sets, tuple(mc_sets), samples, seed
        self.parts, self.shared_noise = parts, shared_noise
        self._logits: dict[str, Tensor] = {}
        self._mc: dict[str, Tensor] = {}
        self._first: dict[str, Tensor] = {}
        self.monte_carlo = monte_carlo
        self._generator_state: tuple[Tensor, list[Tensor]] | None = None

    def logits(self, name: str) -> Tensor:
        """The deterministic network's logits on a set."""
        if name not in self._logits:
            with self.parts.timing("deterministic passes"):
                self._logits[name] = mean_logits(self.network, self.sets[name], self._first_layer(name))
        return self._logits[name]

    def _first_layer(self, name: str) -> Tensor | None:
        """The first layer's output on a Monte Carlo set, where the two predictions share it; None elsewhere."""
        if not (self.monte_carlo and shares_first_layer(self.network)) or name not in self.mc_sets or name in self._mc:
            return None
        if name not in self._first:
            self._first[name] = first_activation(self.network, self.sets[name])
        return self._first[name]

    def probabilities(self, name: str, prediction: str) -> Tensor:
        """Class probabilities of a set under a prediction ('deterministic' or 'mc')."""
        if prediction == "deterministic":
            return torch.softmax(self.logits(name), dim=1)
        for earlier in self.mc_sets[:self.mc_sets.index(name) + 1]:
            if earlier not in self._mc:
                with self.parts.timing("Monte Carlo passes"):
                    self._mc[earlier] = self._draw(earlier)
        return self._mc[name]

    def _draw(self, name: str) -> Tensor:
        """The next set's Monte Carlo predictive, the generator resumed where the previous set left it."""
        if self._generator_state is None:
            torch.manual_seed(self.seed)
        else:
            torch.set_rng_state(self._generator_state[0])
            if torch.cuda.is_available():
                torch.cuda.set_rng_state_all(self._generator_state[1])
        first = self._first_layer(name)
        self._first.pop(name, None)  # its last reader
        if self.shared_noise is None:
            probs = mc_probabilities(self.network, self.sets[name], self.samples, None, first)
        else:
            if name not in self.shared_noise:
                noise = list(dropout_noise(self.network, self.sets[name], self.samples))
                self.shared_noise[name] = noise, torch.get_rng_state()
            noise, after = self.shared_noise[name]
            probs = mc_probabilities(self.network, self.sets[name], self.samples, noise, first)
            torch.set_rng_state(after)
        self._generator_state = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])
        return probs


def _shares_noise(model: nn.Module, images: Sequence[Tensor], samples: int) -> bool:
    """Whether a sweep draws MC dropout's masks once for every pruned network: a dropout network on the CPU whose
    masks for these image sets fit in SHARED_NOISE_BYTES."""
    if not isinstance(model, MLP) or not has_mc(model) or any(x.device.type != "cpu" for x in images):
        return False
    return sum(dropout_noise_bytes(model, x, samples) for x in images) <= SHARED_NOISE_BYTES


def mask_signature(model: nn.Module) -> str:
    """A digest of which entries pruning removed: networks with equal signatures compute the same function."""
    digest = hashlib.sha1()
    for name, buffer in model.named_buffers():
        if name.endswith("_mask"):
            digest.update(name.encode() + buffer.bool().cpu().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Sweep:
    """A scored sweep: the pruning rows, the uncertainty rows, the reliability diagrams' bins, and where the time
    went."""

    rows: list[dict[str, Any]]
    uncertainty: list[dict[str, Any]]
    bins: list[dict[str, Any]]
    parts: Parts
    networks: Parts = field(default_factory=Parts)  # seconds per pruned network, "criterion at fraction"


def scored_sweep(
    model: nn.Module,
    test: tuple[Tensor, Tensor],
    fractions: Sequence[float],
    include_bias: bool = False,
    samples: int = 10,
    seed: int = 0,
    deviations: Sequence[str] = (),
    primary_only: bool = False,
    validation: tuple[Tensor, Tensor] | None = None,
    shifted: dict[str, Tensor] | None = None,
) -> Sweep:
    """Fresh copies of model pruned to each fraction by each criterion that applies, each scored once for all.

    Pruning rows: test accuracy and footprint per criterion and fraction (`deviations` switches on the study's
    pruning and scoring code paths, config.DEVIATIONS; `primary_only` keeps the model's own criterion, SNR for
    BBB); with a validation split, `val_accuracy_mean` of the own criterion (NaN for the others). Sparse VD also
    gets a row for the network as trained (`THRESHOLD_CRITERION`), BC-GNJ one with its units above the unit
    threshold removed (`UNIT_THRESHOLD_CRITERION`). With shifted image sets, the uncertainty rows
    (`evaluate.uncertainty`) of the model's own criteria as defined, for every prediction it has. A network that
    two criteria prune alike (every criterion at fraction 0) is scored once.
    """
    parts, networks_seconds = Parts(), Parts()
    sets = {"test": test[0], **({"validation": validation[0]} if validation is not None else {}), **(shifted or {})}
    mc_sets = ["test", *(shifted or {})]
    bayesian = isinstance(model, BayesianMLP)
    scorers: dict[str, NetworkScores] = {}
    shared_noise = {} if _shares_noise(model, [sets[name] for name in mc_sets], samples) else None

    def scorer(network: nn.Module, monte_carlo: bool) -> NetworkScores:
        """The one scorer of a network's pruned function; monte_carlo: its Monte Carlo passes will be drawn."""
        key = mask_signature(network)
        if key not in scorers:
            scorers[key] = NetworkScores(network, sets, mc_sets, samples, seed, parts, shared_noise, monte_carlo)
        scorers[key].monte_carlo |= monte_carlo
        return scorers[key]

    networks: dict[tuple[str, float, bool], tuple[nn.Module, float]] = {}

    def pruned(criterion: str, fraction: float, with_bias: bool) -> tuple[nn.Module, float]:
        """The one copy of model pruned to fraction by criterion, and its achieved sparsity."""
        if (criterion, fraction, with_bias) not in networks:
            with parts.timing("masks"):
                copied = copy.deepcopy(model)
                networks[criterion, fraction, with_bias] = copied, global_prune(copied, fraction, criterion, with_bias)
        return networks[criterion, fraction, with_bias]

    rows: list[dict[str, Any]] = []
    for criterion, thresholded in threshold_networks(model):
        removed = sparsity(thresholded)
        rows.append({"criterion": criterion, "fraction": removed, "achieved_sparsity": removed,
                     **scored_row(thresholded, *test, samples, seed),
                     **({"val_accuracy_mean": accuracy(mean_logits(thresholded, validation[0]), validation[1])}
                        if validation is not None else {})})
    criteria = sweep_criteria(model, tuple(deviations)) + structured_criteria(model)
    # no chapter reads another criterion's uncertainty than the model's own: its passes are saved
    uncertain = [c for c in sweep_criteria(model) if c in own_criteria(model_kind(model))] if shifted is not None else []
    study_scoring = bayesian and any(d in deviations for d in STUDY_SCORING)
    for criterion in criteria[:1] if primary_only else criteria:
        for fraction in fractions:
            with networks_seconds.timing(f"{criterion} at {fraction:g}"):
                network, achieved = pruned(criterion, fraction, include_bias or criterion == "snr_rho")
                row: dict[str, Any] = {"criterion": criterion, "fraction": fraction, "achieved_sparsity": achieved}
                if study_scoring:
                    if "pruned_rho_zero" in deviations:  # on a copy of its own: the shared one keeps its noise masked
                        network = copy.deepcopy(model)
                        global_prune(network, fraction, criterion, include_bias or criterion == "snr_rho")
                        give_pruned_noise(network)
                    scored = model if "pruning_detached" in deviations else network
                    row.update(scored_row(scored, *test, samples, seed, "mixed_metric" in deviations))
                    validation_logits = None if validation is None else mean_logits(scored, validation[0])
                else:
                    scores = scorer(network, bayesian or criterion in uncertain)
                    logits, ensemble = scores.logits("test"), scores.probabilities("test", "mc") if bayesian else None
                    with parts.timing("metrics"):
                        row["accuracy_mean"] = accuracy(logits, test[1])
                        row["accuracy_ensemble"] = None if ensemble is None else accuracy(ensemble, test[1])
                        row.update(footprint(network))
                    validation_logits = None if validation is None else scores.logits("validation")
                if validation is not None:
                    own = criterion == criteria[0]
                    row["val_accuracy_mean"] = accuracy(validation_logits, validation[1]) if own else float("nan")
                rows.append(row)
    uncertainty, bins = [], []
    for criterion in uncertain:
        for fraction in fractions:
            with networks_seconds.timing(f"{criterion} at {fraction:g}"):
                network, achieved = pruned(criterion, fraction, False)
                scores = scorer(network, True)
                for prediction in PREDICTIONS if has_mc(model) else PREDICTIONS[:1]:
                    outside = {name: scores.probabilities(name, prediction) for name in shifted}
                    probs = scores.probabilities("test", prediction)
                    with parts.timing("metrics"):
                        row, diagram = uncertainty_row(probs, test[1], outside)
                    keys = {"criterion": criterion, "fraction": fraction, "prediction": prediction}
                    uncertainty.append({**keys, "achieved_sparsity": achieved, **row})
                    bins += [{**keys, **b} for b in diagram]
    return Sweep(rows, uncertainty, bins, parts, networks_seconds)


def threshold_networks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The networks as their own thresholds leave them: sparse VD's weights above log alpha = 3 removed, BC-GNJ's
    units above the unit threshold removed (none for other models)."""
    if isinstance(model, SparseVDMLP):
        return [(THRESHOLD_CRITERION, model)]
    if isinstance(model, GroupNJMLP):
        thresholded = copy.deepcopy(model)
        thresholded.remove_units()
        return [(UNIT_THRESHOLD_CRITERION, thresholded)]
    return []


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
    """The pruning rows of `scored_sweep` on (x, y) alone: accuracy and footprint per criterion and fraction."""
    return scored_sweep(model, (x, y), fractions, include_bias, samples, seed, deviations, primary_only).rows


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
