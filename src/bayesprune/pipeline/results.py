"""Tidy result tables: one row per observation, joinable on (dataset, method, seed, protocol)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bayesprune.atomic import atomic_write
from bayesprune.config import RunConfig
from bayesprune.pipeline.manifest import MANIFEST, read_manifest

RUN_KEYS = ["dataset", "method", "seed", "protocol", "variant"]
PRUNING_COLUMNS = RUN_KEYS + ["criterion", "fraction", "achieved_sparsity", "accuracy_mean", "accuracy_ensemble"]
TABLES = ("history", "pruning", "uncertainty", "posthoc", "reliability", "finetuned", "weights", "weight_histogram", "ablation", "snr_histogram", "mu_sigma_histogram",
          "dead_inputs", "precision")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text through a temporary file renamed over path."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def write_table(rows: list[dict[str, Any]], keys: dict[str, Any], path: Path) -> pd.DataFrame:
    """Prefix each row with the run's keys and write a CSV atomically."""
    frame = pd.DataFrame([{**keys, **row} for row in rows])
    write_text_atomic(path, frame.to_csv(index=False))
    return frame


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write JSON atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def run_keys(config: dict[str, Any]) -> dict[str, Any]:
    """The join keys of one run, from its resolved configuration (custom protocols by their label)."""
    cfg = RunConfig.from_dict(config)
    return {**{key: getattr(cfg, key) for key in RUN_KEYS}, "protocol": cfg.protocol_label}


def finished_runs(results_dir: Path) -> list[Path]:
    """Every finished run folder under results_dir/runs (those with a manifest)."""
    return sorted(p.parent for p in Path(results_dir).glob(f"runs/*/{MANIFEST}"))


def table_paths(results_dir: Path, name: str) -> list[Path]:
    """One table's files with rows over every finished run, each checked against its run's manifest first (a run
    with nothing to record may hold an empty file)."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; valid choices: {', '.join(TABLES)}")
    paths = []
    for run_dir in finished_runs(results_dir):
        if name + ".csv" in read_manifest(run_dir)["files"] and _has_rows(run_dir / f"{name}.csv"):
            paths.append(run_dir / f"{name}.csv")
    return paths


def _has_rows(path: Path) -> bool:
    """Whether a table file holds more than an empty table's lone newline, from its first bytes only (the readers
    parse it afterwards: no table is read twice)."""
    with open(path, "rb") as handle:
        return bool(handle.read(64).strip())


def has_table(results_dir: Path, name: str) -> bool:
    """Whether some finished run under results_dir recorded rows of this table."""
    return bool(table_paths(results_dir, name))


def load_table(results_dir: Path, name: str) -> pd.DataFrame:
    """Concatenate one table over every finished run that recorded rows of it."""
    paths = table_paths(results_dir, name)
    if not paths:
        raise FileNotFoundError(f"no finished runs with {name}.csv under {results_dir}/runs; run `make report` first")
    table = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    if "variant" not in table:  # runs written before profiles had variants
        table["variant"] = ""
    variant = table["variant"].astype(object)  # an all-empty column is read as float NaN
    table["variant"] = variant.where(variant.notna(), "")
    return table


def load_search_table(name: str, *results_dirs: Path) -> pd.DataFrame:
    """One table over every finished run of the searches given (a search and the one past its edges), read as one
    search; FileNotFoundError where none has a finished run."""
    tables = [load_table(d, name) for d in results_dirs if finished_runs(d)]
    if not tables:
        raise FileNotFoundError(f"no search under {', '.join(map(str, results_dirs))} has a finished run")
    return pd.concat(tables, ignore_index=True)


def dense_architectures(pruning: pd.DataFrame) -> dict[str, str]:
    """Each variant's dense architecture (784-300-100-10), from its unpruned rows."""
    return pruning[pruning["fraction"] == 0].groupby("variant")["architecture"].first().to_dict()


def load_manifests(results_dir: Path) -> list[dict[str, Any]]:
    """Every finished run's manifest, each checked against the files it lists."""
    return [read_manifest(run_dir) for run_dir in finished_runs(results_dir)]
