"""Wall time of a profile's training on one machine: its runs trained side by side, without the
notebooks and the pruning sweep, so the figure is the training alone."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from bayesprune.config import RunConfig
from bayesprune.host import resolve_device
from bayesprune.pipeline.executors import LocalExecutor
from bayesprune.pipeline.manifest import device_description, library_versions
from bayesprune.pipeline.profiles import Profile
from bayesprune.pipeline.results import run_keys
from bayesprune.training.graphs import step_launch
from bayesprune.training.train import train


def _train_timed(cfg: RunConfig, data_root: Path | None) -> dict[str, Any]:
    """Train one run without checkpoints; its keys, wall seconds, median epoch and final test accuracy."""
    started = time.perf_counter()
    result = train(cfg, data_root=data_root, progress=False)
    seconds = time.perf_counter() - started
    median_epoch = statistics.median(record["seconds"] for record in result.history)
    return {**run_keys(cfg.to_dict()), "epochs": cfg.train_epochs, "seconds": seconds,
            "median_epoch_seconds": median_epoch, "test_acc": result.history[-1]["test_acc"]}


def time_profile_training(
    profile: Profile, seeds: Sequence[int] | None = None, protocols: Sequence[str] | None = None,
    jobs: int = 1, device: str = "auto", data_root: Path | None = None,
) -> dict[str, Any]:
    """Train the profile's grid runs (its ablation left out) `jobs` at a time on one device; the report."""
    executor = LocalExecutor(jobs)
    target = str(resolve_device(device))
    configs = [RunConfig.from_dict({**cfg.to_dict(), "device": target})
               for cfg in profile.runs(seeds=seeds, protocols=protocols, ablation=False)]
    started = time.perf_counter()
    runs = []
    with tqdm(total=len(configs), desc=f"training {profile.name} on {target}", unit="run") as bar:
        for row in executor.map(_train_timed, configs, data_root):
            runs.append(row)
            bar.update()
    return {
        "machine": device_description(target), "profile": profile.name, "jobs": jobs,
        "step_launch": step_launch(torch.device(target)),
        "total_seconds": time.perf_counter() - started, "library_versions": library_versions(),
        "runs": sorted(runs, key=lambda row: (row["protocol"], row["dataset"], row["method"], row["seed"])),
    }


def format_training_report(report: dict[str, Any]) -> str:
    """The report as a table of runs and a line with the total."""
    table = pd.DataFrame(report["runs"]).set_index(["protocol", "dataset", "method", "seed"])
    return (f"{table.to_string(float_format=lambda v: f'{v:.3f}')}\n"
            f"{len(table)} runs of profile {report['profile']}, {report['jobs']} at a time on {report['machine']}: "
            f"{report['total_seconds']:.0f} s in all")
