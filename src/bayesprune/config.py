"""One frozen configuration per run: its fields are exactly a train notebook's parameters."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

DATASETS = ("mnist", "fashion-mnist")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "linear", "cosine")
PRIORS = ("mixture", "gaussian", "laplace")
SELECTIONS = ("val_acc", "val_acc_pruned")  # what picks a run's kept epoch (and a search's point): dense or pruned
# The sparsities the verdicts speak of: every epoch with a validation split records validation accuracy after pruning
# each by the method's own criterion (`val_acc_pruned90`, ...), and the rule "chosen for f" (`for90`, ...) keeps the
# epoch with the best of it among those whose dense validation accuracy lies within SELECTION_MARGIN of the best.
TARGETS = (0.9, 0.95, 0.98, 0.99)
SELECTION_MARGIN = 0.005  # half a point of dense validation accuracy, fixed before any run that uses it
TARGET_RULES = tuple(f"for{round(100 * f)}" for f in TARGETS)
KL_WEIGHTINGS = ("blundell", "uniform", "study")
DEVICES = ("auto", "cpu", "cuda")
PROTOCOLS = ("corrected", "study", "custom")
# The study's code paths that differ from the method it describes, each a switch (see the audit chapter).
DEVIATIONS = {
    "pruning_detached": "BBB pruning never reaches the forward pass (the masks are computed, the network is unchanged)",
    "snr_over_rho": "BBB pruning score |mu| / rho for weights and mu / rho for biases, ranked together",
    "pruned_rho_zero": "pruned BBB weights get rho = 0, so sampled passes give them noise of sigma = softplus(0)",
    "entropy_detached": "log q(w) carries no gradient: only the prior and the likelihood act on sigma",
    "kl_doubling": "minibatch KL weight 2^(1-i) for i = 0, 1, ... (sums to 4 per epoch)",
    "baseline_dropout": "'SGD' has dropout 0.01, and every baseline drops input pixels at its hidden rate",
    "mixed_metric": "BBB scored by the argmax of the mean log-softmax of 10 sampled networks and the mean network",
    "augmentation": "Fashion-MNIST train and test images randomly rotated by 0-360 degrees and scaled by 0.65-1.25",
    "long_baselines": "Fashion-MNIST baselines trained for twice the epochs (100 against BBB's 50)",
}
PRUNING_DEVIATIONS = ("pruning_detached", "snr_over_rho", "pruned_rho_zero", "mixed_metric")  # no retraining needed
TRAINING_DEVIATIONS = tuple(d for d in DEVIATIONS if d not in PRUNING_DEVIATIONS)
STUDY_SGD_DROPOUT = 0.01
_DROPOUT_METHOD = re.compile(r"^dropout(0?\.\d+)$")
# A point estimate trained under a prior (MAP): <base>-<penalty>, the penalty naming the prior it is the negative log of.
PENALTY_PRIORS = {"l2": "gaussian", "l1": "laplace", "mixture": "mixture"}
_VARIANT = re.compile(r"^[A-Za-z0-9_.-]*$")
METHOD_CHOICES = (
    "sgd, bbb, sparsevd, dropout<p> with 0 < p < 1 (e.g. dropout0.5), bcgnj (Bayesian Compression, group "
    "normal-Jeffreys), and sgd or dropout<p> trained under a prior "
    "(MAP) as <base>-l2 (Gaussian), <base>-l1 (Laplace) or <base>-mixture (BBB's scale mixture), e.g. sgd-l1"
)
UNDROPPED_METHODS = ("sgd", "bbb", "sparsevd", "bcgnj")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ValueError unless value is one of choices."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(choices)}")


def _positive(name: str, value: float) -> None:
    """Raise ValueError unless value is a finite number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")


def validate_dataset(dataset: str) -> str:
    """Return dataset if known, else raise ValueError naming the valid choices."""
    check_choice("dataset", dataset, DATASETS)
    return dataset


def validate_fraction(fraction: float) -> float:
    """Return a pruning fraction in [0, 1), else raise ValueError."""
    if not (isinstance(fraction, (int, float)) and 0.0 <= fraction < 1.0):
        raise ValueError(f"pruning fraction must be in [0, 1), got {fraction!r}")
    return float(fraction)


def split_method(method: str) -> tuple[str, str | None]:
    """A method name as (base, penalty): "dropout0.5-l1" -> ("dropout0.5", "l1"), "sgd" -> ("sgd", None)."""
    base, _, penalty = method.partition("-")
    if not penalty:
        return method, None
    if penalty not in PENALTY_PRIORS or base in ("bbb", "sparsevd", "bcgnj"):
        raise ValueError(f"unknown method {method!r}; valid choices: {METHOD_CHOICES}")
    return base, penalty


def method_dropout(method: str) -> float:
    """Dropout rate a method name implies (0 for sgd, bbb, sparsevd and bcgnj); ValueError for unknown names."""
    method = split_method(method)[0]
    if method in UNDROPPED_METHODS:
        return 0.0
    match = _DROPOUT_METHOD.match(method)
    if match and 0.0 < float(match.group(1)) < 1.0:
        return float(match.group(1))
    raise ValueError(f"unknown method {method!r}; valid choices: {METHOD_CHOICES}")


def schedule_factor(schedule: str, epoch: int, epochs: int, decay_start: float = 0.0) -> float:
    """Share of the full learning rate in epoch `epoch` (0-based) of `epochs`: 1 before decay_start (a share of
    the epochs), then linear or half-cosine decay that reaches 1 / (decay length) of it in the last epoch."""
    check_choice("lr_schedule", schedule, LR_SCHEDULES)
    start = round(decay_start * epochs)
    if schedule == "constant" or epoch < start:
        return 1.0
    length = epochs - start
    done = (epoch - start) / length  # 0 in the first decayed epoch
    return 1.0 - done if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run; defaults follow the study's protocol."""

    dataset: str = "mnist"  # mnist | fashion-mnist
    method: str = "sgd"  # sgd | bbb | sparsevd (sparse variational dropout) | bcgnj | dropout<p>, each of sgd and
    # dropout<p> also under a prior (MAP): <base>-l2, <base>-l1, <base>-mixture (see METHOD_CHOICES)
    seed: int = 0
    variant: str = ""  # name of a profile's variant (a named set of overrides, e.g. one regime-study step)
    protocol: str = "corrected"  # corrected | study (every deviation) | custom (the deviations listed)
    deviations: tuple[str, ...] = ()  # the study's code paths switched on, names in DEVIATIONS
    epochs: int = 50  # the study trained every model for 50 epochs
    batch_size: int = 100
    optimizer: str = "adam"  # the study used Adam for every model
    lr: float = 1e-4  # the study's Adam learning rate
    momentum: float = 0.0  # used by optimizer="sgd" only
    lr_schedule: str = "constant"  # constant | linear | cosine: from lr_decay_start the rate falls to 0 by the last epoch
    lr_decay_start: int = 0  # epochs at the full rate before the decay (Molchanov et al.'s Sparse VD: 100 of 200)
    hidden: tuple[int, ...] = (500, 500)  # 784-500-500-10
    input_dropout: float = 0.0  # dropout on the input pixels; the study used the hidden rate
    pixel_divisor: float = 255.0  # the study scaled to [0, 1]; Blundell et al. divided by 126
    train_subset: int = 0  # first N training images; 0 = all 60 000
    test_subset: int = 0  # first N test images; 0 = all 10 000
    validation: int = 0  # last N training images held out for choices (Blundell: 10 000); 0 = none
    patience: int = 0  # stop once this many epochs improved none of the validation scores, keep the best; 0 = never
    select: str = "val_acc"  # the rule that keeps an epoch: val_acc, val_acc_pruned (at select_fraction), for90-99
    select_fraction: float = 0.9  # val_acc_pruned: validation accuracy after pruning this share by the own criterion
    targets: bool = False  # every epoch also records validation accuracy pruned to each of TARGETS (for90 ... for99)
    # Bayes by Backprop's prior and complexity cost; the KL weighting and warm-up also apply to sparse variational
    # dropout's KL, and the prior and its weighting to the MAP methods (<base>-l2 etc.), whose name sets `prior`
    prior: str = "mixture"  # mixture | gaussian | laplace (MAP methods only)
    prior_pi: float = 0.5
    prior_log_sigma1: float = 0.0  # sigma1 = e^0; the Gaussian's sigma or the Laplace scale b of a single prior
    prior_log_sigma2: float = -6.0  # sigma2 = e^-6 (mixture only)
    train_samples: int = 2  # weight samples per minibatch in the ELBO
    kl_weighting: str = "blundell"  # blundell | uniform | study (set by the kl_doubling deviation)
    kl_warmup: int = 0  # the complexity cost grows linearly to its full weight over this many epochs; 0 = full from the start
    kl_delay: int = 0  # epochs with no complexity cost at all before the warm-up starts (Molchanov et al.'s schedule)
    init_mu: float = 0.2  # BBB posterior means start at U(-init_mu, init_mu) (the study's 0.2)
    init_rho: tuple[float, float] = (-5.0, -4.0)  # BBB rho starts at U(low, high) (the study's), sigma = softplus(rho)
    fused_elbo: bool = True  # fast step (bayesprune.training.fused); False: the plain autograd reference, same estimator
    eval_samples: int = 10  # networks in the MC ensemble
    device: str = "auto"  # auto | cpu | cuda

    def __post_init__(self) -> None:
        """Check every field where it enters, with errors that name the valid choices."""
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not isinstance(self.init_rho, (tuple, list)) or len(self.init_rho) != 2:
            raise ValueError(f"init_rho must be a range (low, high), got {self.init_rho!r}")
        object.__setattr__(self, "init_rho", tuple(float(r) for r in self.init_rho))
        self._resolve_protocol()
        validate_dataset(self.dataset)
        method_dropout(self.method)
        if self.penalty:
            object.__setattr__(self, "prior", PENALTY_PRIORS[self.penalty])
        check_choice("protocol", self.protocol, PROTOCOLS)
        if not isinstance(self.variant, str) or not _VARIANT.match(self.variant):
            raise ValueError(f"variant must be a name of letters, digits, '_', '-' and '.', got {self.variant!r}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("prior", self.prior, PRIORS)
        if self.prior == "laplace" and not self.penalty:
            raise ValueError("prior 'laplace' is for the MAP methods (<base>-l1); BBB takes mixture or gaussian")
        check_choice("select", self.select, SELECTIONS + TARGET_RULES)
        if not (isinstance(self.select_fraction, (int, float)) and 0.0 < self.select_fraction < 1.0):
            raise ValueError(f"select_fraction must be in (0, 1), got {self.select_fraction!r}")
        if self.select in TARGET_RULES and not self.targets:
            raise ValueError(f"select {self.select!r} needs the per-target record (targets: true)")
        if self.select != "val_acc" and not self.validation:
            raise ValueError(f"select {self.select!r} needs a validation split (validation > 0)")
        check_choice("kl_weighting", self.kl_weighting, KL_WEIGHTINGS)
        check_choice("device", self.device, DEVICES)
        for name in ("epochs", "batch_size", "train_samples", "eval_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.lr_decay_start, int) or not 0 <= self.lr_decay_start < self.epochs:
            raise ValueError(f"lr_decay_start must be an integer in [0, epochs), got {self.lr_decay_start!r}")
        if not isinstance(self.kl_warmup, int) or self.kl_warmup < 0:
            raise ValueError(f"kl_warmup must be an integer >= 0 (epochs), got {self.kl_warmup!r}")
        if not isinstance(self.kl_delay, int) or self.kl_delay < 0:
            raise ValueError(f"kl_delay must be an integer >= 0 (epochs), got {self.kl_delay!r}")
        if not isinstance(self.validation, int) or not isinstance(self.patience, int):
            raise ValueError(f"validation and patience must be integers, got {self.validation!r}, {self.patience!r}")
        if self.validation < 0 or self.patience < 0:
            raise ValueError(f"validation and patience must be >= 0, got {self.validation}, {self.patience}")
        if self.patience and not self.validation:
            raise ValueError("early stopping (patience > 0) needs a validation split (validation > 0)")
        if self.train_subset and self.validation >= self.train_subset:
            raise ValueError(f"validation ({self.validation}) must be smaller than train_subset ({self.train_subset})")
        low, high = self.init_rho
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"init_rho must be a finite range (low, high) with low <= high, got {self.init_rho!r}")
        if not (math.isfinite(self.init_mu) and self.init_mu >= 0):
            raise ValueError(f"init_mu must be a finite number >= 0, got {self.init_mu!r}")
        for name in ("lr", "pixel_divisor"):
            _positive(name, getattr(self, name))
        if not 0.0 < self.prior_pi <= 1.0:
            raise ValueError(f"prior_pi must be in (0, 1], got {self.prior_pi!r}")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ValueError(f"input_dropout must be in [0, 1), got {self.input_dropout!r}")
        if self.train_subset < 0 or self.test_subset < 0:
            raise ValueError("train_subset and test_subset must be >= 0 (0 = whole split)")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must list positive layer widths, got {self.hidden!r}")

    def _resolve_protocol(self) -> None:
        """Check protocol and deviations together and write their effects into the other fields."""
        check_choice("protocol", self.protocol, PROTOCOLS)
        unknown = sorted(set(self.deviations) - set(DEVIATIONS))
        if unknown:
            raise ValueError(f"unknown deviations {unknown}; valid choices: {', '.join(DEVIATIONS)}")
        deviations = tuple(d for d in DEVIATIONS if d in set(self.deviations))
        if self.protocol == "study":
            if deviations and deviations != tuple(DEVIATIONS):
                raise ValueError("protocol 'study' switches on every deviation; list a subset with protocol 'custom'")
            deviations = tuple(DEVIATIONS)
        elif self.protocol == "corrected" and deviations:
            raise ValueError(f"protocol 'corrected' has no deviations, got {list(deviations)}; use protocol 'custom'")
        elif self.protocol == "custom" and not deviations:
            raise ValueError("protocol 'custom' needs at least one deviation")
        object.__setattr__(self, "deviations", deviations)
        if "kl_doubling" in deviations:
            object.__setattr__(self, "kl_weighting", "study")
        if "baseline_dropout" in deviations and self.method != "bbb":
            object.__setattr__(self, "input_dropout", self.dropout)

    def deviates(self, name: str) -> bool:
        """Whether the study's code path `name` is switched on."""
        return name in self.deviations

    def affected_by(self, name: str) -> bool:
        """Whether deviation `name` changes this run at all (e.g. augmentation only touches Fashion-MNIST)."""
        fashion = self.dataset == "fashion-mnist"
        return {
            "entropy_detached": self.bayesian, "kl_doubling": self.bayesian,
            "baseline_dropout": not self.bayesian, "augmentation": fashion,
            "long_baselines": fashion and not self.bayesian,
        }.get(name, self.bayesian)

    @property
    def protocol_label(self) -> str:
        """The protocol as tables show it; a custom run is named by what it changes from the nearer protocol."""
        if self.protocol != "custom":
            return self.protocol
        fixed = [d for d in DEVIATIONS if d not in self.deviations]
        if len(fixed) <= len(self.deviations):
            return "study without " + " + ".join(fixed)
        return "corrected with " + " + ".join(self.deviations)

    @property
    def train_epochs(self) -> int:
        """Epochs actually trained: `epochs`, doubled for Fashion-MNIST baselines under long_baselines."""
        return 2 * self.epochs if self.deviates("long_baselines") and self.affected_by("long_baselines") else self.epochs

    @property
    def bayesian(self) -> bool:
        """Whether the run trains a Bayes by Backprop network."""
        return self.method == "bbb"

    @property
    def penalty(self) -> str | None:
        """The MAP method's penalty (l2, l1, mixture), None for every other method."""
        return split_method(self.method)[1]

    @property
    def base_method(self) -> str:
        """The method without its penalty: "sgd-l1" -> "sgd"."""
        return split_method(self.method)[0]

    def lr_at(self, epoch: int, epochs: int | None = None) -> float:
        """The learning rate of epoch `epoch` (0-based) of `epochs` (default: the epochs trained): full until
        lr_decay_start (scaled to `epochs`), then falling linearly or along a half cosine towards 0 at the end."""
        return self.lr * schedule_factor(self.lr_schedule, epoch, epochs or self.train_epochs,
                                         self.lr_decay_start / self.epochs)

    def kl_ramp(self, epoch: int) -> float:
        """Share of the complexity cost in epoch `epoch` (0-based): 0 for kl_delay epochs, then linear over kl_warmup
        epochs, then 1."""
        if epoch < self.kl_delay:
            return 0.0
        return min(1.0, (epoch - self.kl_delay + 1) / self.kl_warmup) if self.kl_warmup else 1.0

    @property
    def dropout(self) -> float:
        """Hidden-layer dropout rate implied by the method name (the study's 'SGD' had 0.01)."""
        if self.base_method == "sgd" and "baseline_dropout" in self.deviations:
            return STUDY_SGD_DROPOUT
        return method_dropout(self.method)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict of every field."""
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        data["deviations"] = list(self.deviations)
        data["init_rho"] = list(self.init_rho)
        return data

    def trains_like(self, other: RunConfig) -> bool:
        """Whether two configs train the same network epoch by epoch: equal but for the kept epoch's score and the
        variant's name, so one's checkpoint serves the other."""
        neutral = {"select": "val_acc", "variant": ""}
        return dataclasses.replace(self, **neutral) == dataclasses.replace(other, **neutral)

    def digest(self) -> str:
        """Short stable hash of the configuration (keys runs and checkpoints)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of every field, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build a config, rejecting unknown keys with the list of valid ones."""
        known = set(cls.field_names())
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid keys: {', '.join(sorted(known))}")
        return cls(**{k: tuple(v) if k in ("hidden", "deviations", "init_rho") else v for k, v in data.items()})


def target_score(rule: str) -> str:
    """The history column a "chosen for f" rule maximises: validation accuracy pruned to f (`for98` ->
    `val_acc_pruned98`)."""
    check_choice("target rule", rule, TARGET_RULES)
    return f"val_acc_pruned{rule[3:]}"
