"""Deep ensembles over a profile's finished runs: for each method the profile names under `ensembles`, the runs
that differ only in their seed (the profile's first `ENSEMBLE_SIZE` seeds) are loaded from their checkpoints and
scored together (`evaluate.ensemble`) at the post-hoc fractions their rule judges them at (`judged_fractions`), into results/<profile>/ensembles.csv
with the members' training seconds: an ensemble costs its members' trainings. Checkpoints are never committed, so a
member trained on another machine has none here: an ensemble not yet scored gets it back by `restore`, which
retrains the member and checks that it reproduces the committed run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bayesprune.config import RunConfig
from bayesprune.data.splits import scored_split, shifted_splits, training_splits
from bayesprune.evaluate.ensemble import ENSEMBLE_SIZE, ensemble_rows
from bayesprune.evaluate.posthoc import judged_fractions
from bayesprune.pipeline.manifest import MANIFEST, read_manifest, training_seconds
from bayesprune.pipeline.profiles import Profile
from bayesprune.pipeline.results import run_keys, write_text_atomic
from bayesprune.pipeline.run_paths import RunPaths
from bayesprune.pipeline.runs import load_trained
from bayesprune.training.train import CHECKPOINT

ENSEMBLES = "ensembles.csv"


def ensemble_groups(profile: Profile) -> list[list[RunConfig]]:
    """Per ensembled method, dataset, protocol and variant: the runs of its first ENSEMBLE_SIZE seeds."""
    groups: dict[str, list[RunConfig]] = {}
    for cfg in profile.runs(ablation=False):
        if cfg.method in profile.ensembles:
            groups.setdefault(json.dumps({**cfg.to_dict(), "seed": None}, sort_keys=True), []).append(cfg)
    return [sorted(group, key=lambda cfg: cfg.seed)[:ENSEMBLE_SIZE] for group in groups.values()]


def scored_table(runs_dir: Path) -> pd.DataFrame:
    """The ensembles results/<profile>/ensembles.csv already holds (empty where none)."""
    path = Path(runs_dir).parent / ENSEMBLES
    return pd.read_csv(path, keep_default_na=False) if path.exists() else pd.DataFrame()


def group_key(keys: dict) -> str:
    """An ensemble's name: its dataset, method, protocol and variant."""
    return "/".join(str(keys[k]) for k in ("dataset", "method", "protocol", "variant"))


def write_ensembles(profile: Profile, runs_dir: Path, data_dir: Path | None = None,
                    restore: Callable[[RunConfig, Path], None] | None = None) -> pd.DataFrame | None:
    """Score every ensemble whose members have all finished; write and return the table (None where no ensemble is
    complete yet). A member without its checkpoint is restored first by `restore(cfg, folder)` where given, unless
    the ensemble is already in the table (a fresh clone keeps the committed scores rather than retrain them)."""
    before = scored_table(runs_dir)
    scored = {group_key(row) for row in before.to_dict("records")}
    rows = []
    for members in ensemble_groups(profile):
        folders = [RunPaths.of(runs_dir, cfg).final for cfg in members]
        fractions = judged_fractions(members[0].select, profile.posthoc_fractions)
        if not fractions or not members[0].validation or not all((folder / MANIFEST).exists() for folder in folders):
            continue
        missing = [(cfg, folder) for cfg, folder in zip(members, folders) if not (folder / CHECKPOINT).exists()]
        if missing and (restore is None or group_key(run_keys(members[0].to_dict())) in scored):
            continue
        for cfg, folder in missing:
            restore(cfg, folder)
        models = [load_trained(folder)[1] for folder in folders]
        cfg = members[0]
        validation = training_splits(cfg, data_dir, "cpu")[1]
        test, shifted = scored_split(cfg, data_dir, "cpu"), shifted_splits(cfg, data_dir, "cpu")
        keys = {**run_keys(cfg.to_dict()), "seed": " ".join(str(member.seed) for member in members),
                "train_seconds": sum(training_seconds(read_manifest(folder), runs_dir) for folder in folders)}
        rows += [{**keys, **row} for row in ensemble_rows(models, fractions, validation, test, shifted)]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    fresh = {group_key(row) for row in frame.to_dict("records")}
    kept = before[[group_key(row) not in fresh for row in before.to_dict("records")]]  # scored before, not now
    frame = pd.concat([kept, frame], ignore_index=True) if len(kept) else frame
    write_text_atomic(Path(runs_dir).parent / ENSEMBLES, frame.to_csv(index=False))
    return frame
