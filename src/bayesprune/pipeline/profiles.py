"""Run profiles (profiles.yml): a grid of datasets x methods x seeds and overrides of RunConfig."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from bayesprune.config import TRAINING_DEVIATIONS, RunConfig, validate_fraction
from bayesprune.evaluate.ensemble import ENSEMBLE_SIZE

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PROFILES_ENV = "BAYESPRUNE_PROFILES"
PROFILE_KEYS = (
    "description", "datasets", "methods", "seeds", "protocols", "fractions", "include_bias", "finetune_epochs", "finetune_patience",
    "finetune_rates", "posthoc_fractions", "ensembles",
    "ablation", "config", "method_config", "variants", "reference",
)


@dataclass(frozen=True)
class Profile:
    """One named grid of runs."""

    name: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    fractions: tuple[float, ...]
    protocols: tuple[str, ...] = ("corrected",)
    include_bias: bool = False
    finetune_epochs: int = 0  # >0: each run's pruning sweep is also fine-tuned, one-shot and iterative (finetuned.csv)
    finetune_patience: int = 0  # >0: each fine-tuning stops once this many epochs bring no better validation accuracy
    finetune_rates: tuple[float, ...] = (1.0,)  # fine-tuning rates tried, as factors of each run's training rate
    posthoc_fractions: tuple[float, ...] = ()  # where runs with a validation split get temperature scaling and Laplace
    ensembles: tuple[str, ...] = ()  # methods whose first 5 seeds are also scored as one deep ensemble
    ablation: tuple[str, ...] = ()  # methods trained once more per training-time deviation fixed alone
    config: tuple[tuple[str, Any], ...] = ()
    method_config: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()  # per-method overrides of config
    variants: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()  # named override sets, each a copy of the grid
    variant_methods: tuple[tuple[str, tuple[str, ...]], ...] = ()  # variants that copy only these methods' runs
    variant_method_config: tuple[tuple[str, tuple], ...] = ()  # per variant, per-method overrides (a rule's points)
    description: str = ""
    reference: bool = False  # committed reference results: trained only from a clean, committed tree

    def runs(
        self,
        datasets: Sequence[str] | None = None,
        methods: Sequence[str] | None = None,
        seeds: Sequence[int] | None = None,
        protocols: Sequence[str] | None = None,
        ablation: bool = True,
        variants: Sequence[str] | None = None,
    ) -> list[RunConfig]:
        """Every run's resolved config, optionally restricted to some datasets, methods, seeds, protocols or
        variants, with or without the ablation runs."""
        chosen = []
        named = tuple(name for name, _ in self.variants)
        for name, wanted, available in (("dataset", datasets, self.datasets), ("method", methods, self.methods),
                                        ("seed", seeds, self.seeds), ("protocol", protocols, self.protocols),
                                        ("variant", variants, named)):
            if wanted is not None and set(wanted) - set(available):
                raise ValueError(f"{name} {sorted(set(wanted) - set(available))} not in profile {self.name!r}; "
                                 f"valid choices: {', '.join(map(str, available))}")
            chosen.append(list(wanted) if wanted is not None else list(available))
        overrides = dict(self.config)
        per_method = {method: dict(items) for method, items in self.method_config}
        variants = [(name, dict(items)) for name, items in self.variants if name in chosen[4]] or [("", {})]
        only = dict(self.variant_methods)
        points = {variant: {method: dict(items) for method, items in methods}
                  for variant, methods in self.variant_method_config}
        grid = [RunConfig.from_dict({**overrides, **per_method.get(m, {}), **changes, **points.get(v, {}).get(m, {}),
                                     "dataset": d, "method": m, "seed": s, "protocol": p, "variant": v})
                for v, changes in variants for p in chosen[3] for d in chosen[0] for m in chosen[1]
                for s in chosen[2] if m in only.get(v, (m,))]
        if not ablation:
            return grid
        return grid + [fixed for cfg in grid if self._ablated(cfg) for fixed in training_ablation(cfg, overrides)]

    def _ablated(self, cfg: RunConfig) -> bool:
        """Whether cfg is a study run the profile ablates (its methods, first seed only)."""
        return cfg.protocol == "study" and cfg.method in self.ablation and cfg.seed == self.seeds[0]


def training_ablation(study: RunConfig, overrides: dict[str, Any]) -> list[RunConfig]:
    """The study run retrained with each training-time deviation that affects it fixed alone."""
    base = {**overrides, "dataset": study.dataset, "method": study.method, "seed": study.seed, "protocol": "custom"}
    return [
        RunConfig.from_dict({**base, "deviations": [d for d in study.deviations if d != fixed]})
        for fixed in TRAINING_DEVIATIONS if study.affected_by(fixed)
    ]


def profiles_path() -> Path:
    """$BAYESPRUNE_PROFILES, else the project's profiles.yml."""
    return Path(os.environ.get(PROFILES_ENV) or PROJECT_ROOT / "profiles.yml")


def _items(mapping: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """A YAML mapping of config overrides as sorted, hashable pairs (lists become tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (mapping or {}).items()))


def _variants(name: str, entry: dict[str, Any]) -> tuple[tuple, tuple, tuple]:
    """A profile's variants as (name, overrides) pairs, the methods each one is limited to (key `methods`), and
    each one's per-method overrides (key `method_config`: a selection rule's chosen points)."""
    variants, limited, points = [], [], []
    for variant, changes in (entry.get("variants") or {}).items():
        changes = dict(changes or {})
        methods = changes.pop("methods", None)
        per_method = changes.pop("method_config", None) or {}
        unknown = sorted(set(per_method) - set(entry["methods"]))
        if unknown:
            raise ValueError(f"profile {name!r}: variant {variant!r} configures methods {unknown} it does not run; "
                             f"valid choices: {', '.join(entry['methods'])}")
        if per_method:
            points.append((variant, tuple((m, _items(c)) for m, c in per_method.items())))
        if methods is not None:
            unknown = sorted(set(methods) - set(entry["methods"]))
            if unknown:
                raise ValueError(f"profile {name!r}: variant {variant!r} names methods {unknown} it does not run; "
                                 f"valid choices: {', '.join(entry['methods'])}")
            limited.append((variant, tuple(methods)))
        variants.append((variant, _items(changes)))
    return tuple(variants), tuple(limited), tuple(points)


def _profile(name: str, entry: dict[str, Any]) -> Profile:
    """Build and fully validate one profile entry (every run's config included)."""
    unknown = sorted(set(entry) - set(PROFILE_KEYS))
    if unknown:
        raise ValueError(f"profile {name!r} has unknown keys {unknown}; valid keys: {', '.join(PROFILE_KEYS)}")
    missing = [k for k in ("datasets", "methods", "seeds", "fractions") if k not in entry]
    if missing:
        raise ValueError(f"profile {name!r} lacks {missing}")
    variants, variant_methods, variant_method_config = _variants(name, entry)
    profile = Profile(
        name=name,
        datasets=tuple(entry["datasets"]),
        methods=tuple(entry["methods"]),
        seeds=tuple(int(s) for s in entry["seeds"]),
        fractions=tuple(validate_fraction(f) for f in entry["fractions"]),
        protocols=tuple(entry.get("protocols", ("corrected",))),
        include_bias=bool(entry.get("include_bias", False)),
        finetune_epochs=entry.get("finetune_epochs", 0),
        finetune_patience=entry.get("finetune_patience", 0),
        finetune_rates=tuple(entry.get("finetune_rates", (1.0,))),
        posthoc_fractions=tuple(validate_fraction(f) for f in entry.get("posthoc_fractions", ())),
        ensembles=tuple(entry.get("ensembles", ())),
        ablation=tuple(entry.get("ablation", ())),
        config=_items(entry.get("config")),
        method_config=tuple((m, _items(c)) for m, c in (entry.get("method_config") or {}).items()),
        variants=variants,
        variant_methods=variant_methods,
        variant_method_config=variant_method_config,
        description=entry.get("description", ""),
        reference=bool(entry.get("reference", False)),
    )
    for key in ("finetune_epochs", "finetune_patience"):
        if not isinstance(getattr(profile, key), int) or getattr(profile, key) < 0:
            raise ValueError(f"profile {name!r}: {key} must be an integer >= 0, got {getattr(profile, key)!r}")
    if not profile.finetune_rates or not all(isinstance(r, (int, float)) and r > 0 for r in profile.finetune_rates):
        raise ValueError(f"profile {name!r}: finetune_rates must be factors > 0 of the training rate, "
                         f"got {list(profile.finetune_rates)!r}")
    if len(profile.finetune_rates) > 1 and not all(cfg.validation for cfg in profile.runs(ablation=False)):
        raise ValueError(f"profile {name!r}: several finetune_rates need a validation split to choose between them")
    if profile.finetune_patience and not all(cfg.validation for cfg in profile.runs(ablation=False)):
        raise ValueError(f"profile {name!r}: finetune_patience needs a validation split in every run (validation > 0)")
    if profile.posthoc_fractions and not any(cfg.validation for cfg in profile.runs(ablation=False)):
        raise ValueError(f"profile {name!r}: posthoc_fractions choose on a validation split, and no run has one "
                         f"(validation > 0)")
    if profile.ensembles and (len(profile.seeds) < ENSEMBLE_SIZE or not profile.posthoc_fractions):
        raise ValueError(f"profile {name!r}: an ensemble needs {ENSEMBLE_SIZE} seeds and the posthoc_fractions to "
                         f"score it at; got {len(profile.seeds)} seeds and {list(profile.posthoc_fractions)}")
    named = (("ensembles", profile.ensembles), ("configures", [m for m, _ in profile.method_config]),
             ("ablates", profile.ablation))
    for verb, methods in named:  # every method a key names must be one the profile runs
        for method in methods:
            if method not in profile.methods:
                raise ValueError(f"profile {name!r} {verb} method {method!r}, which it does not run; "
                                 f"valid choices: {', '.join(profile.methods)}")
    profile.runs()
    return profile


# libyaml's safe loader where PyYAML was built with it (its wheels are): the same profiles, read ten times faster
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Every profile in the file, validated before anything runs."""
    path = Path(path) if path else profiles_path()
    entries = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    return {name: _profile(name, entry) for name, entry in entries.items()}


def get_profile(name: str | None = None, path: Path | None = None) -> Profile:
    """A profile by name; None picks `paper` with CUDA and `quick` without."""
    profiles = load_profiles(path)
    name = name or default_profile_name()
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}; valid choices: {', '.join(profiles)}")
    return profiles[name]


def default_profile_name() -> str:
    """`paper` where CUDA is available, else `quick`."""
    return "paper" if torch.cuda.is_available() else "quick"
