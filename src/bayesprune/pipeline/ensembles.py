"""Deep ensembles over a profile's finished runs: for each method the profile names under `ensembles`, the runs
that differ only in their seed (the profile's first `ENSEMBLE_SIZE` seeds) are loaded from their checkpoints and
scored together (`evaluate.ensemble`) at the post-hoc fractions their rule judges them at (`judged_fractions`), into results/<profile>/ensembles.csv
with the members' training seconds: an ensemble costs its members' trainings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bayesprune.config import RunConfig
from bayesprune.data.splits import scored_split, shifted_splits, training_splits
from bayesprune.evaluate.ensemble import ENSEMBLE_SIZE, ensemble_rows
from bayesprune.evaluate.posthoc import judged_fractions
from bayesprune.pipeline.manifest import MANIFEST, read_manifest
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


def write_ensembles(profile: Profile, runs_dir: Path, data_dir: Path | None = None) -> pd.DataFrame | None:
    """Score every ensemble whose members have all finished with their checkpoints; write and return the table
    (None where no ensemble is complete yet)."""
    rows = []
    for members in ensemble_groups(profile):
        folders = [RunPaths.of(runs_dir, cfg).final for cfg in members]
        fractions = judged_fractions(members[0].select, profile.posthoc_fractions)
        if not fractions or not members[0].validation or not all((folder / MANIFEST).exists() and (folder / CHECKPOINT).exists() for folder in folders):
            continue
        models = [load_trained(folder)[1] for folder in folders]
        cfg = members[0]
        validation = training_splits(cfg, data_dir, "cpu")[1]
        test, shifted = scored_split(cfg, data_dir, "cpu"), shifted_splits(cfg, data_dir, "cpu")
        keys = {**run_keys(cfg.to_dict()), "seed": " ".join(str(member.seed) for member in members),
                "train_seconds": sum(read_manifest(folder)["train_seconds"] for folder in folders)}
        rows += [{**keys, **row} for row in ensemble_rows(models, fractions, validation, test, shifted)]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    write_text_atomic(Path(runs_dir).parent / ENSEMBLES, frame.to_csv(index=False))
    return frame
