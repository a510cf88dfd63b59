"""Re-run one finished run from scratch and compare its accuracies with the recorded ones."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from bayesprune.config import RunConfig
from bayesprune.pipeline.manifest import read_manifest
from bayesprune.pipeline.profiles import Profile
from bayesprune.pipeline.results import load_table
from bayesprune.pipeline.runner import Outcome, attempt_run

COMPARED_ON = ["criterion", "fraction"]


class RecheckFailed(RuntimeError):
    """The re-run of a finished run did not finish."""


def seed_spread(pruning: pd.DataFrame, run: pd.DataFrame) -> pd.Series:
    """Std over seeds of the run's model (same dataset, method, protocol) per criterion and fraction."""
    first = run.iloc[0]
    variant = first.get("variant")
    same = pruning[(pruning["dataset"] == first["dataset"]) & (pruning["method"] == first["method"])
                   & (pruning["protocol"] == first["protocol"]) & (pruning["variant"] == ("" if pd.isna(variant) else variant))]
    return same.groupby(COMPARED_ON)["accuracy_mean"].std()


def compare(recorded: pd.DataFrame, rerun: pd.DataFrame, spread: pd.Series) -> pd.DataFrame:
    """Recorded and re-run accuracy per criterion and fraction, the difference and whether it is within 2 std."""
    table = recorded.set_index(COMPARED_ON)[["accuracy_mean"]].rename(columns={"accuracy_mean": "recorded"})
    table["rerun"] = rerun.set_index(COMPARED_ON)["accuracy_mean"]
    table["difference"] = table["rerun"] - table["recorded"]
    table["seed_std"] = spread.reindex(table.index)
    table["within"] = (table["difference"].abs() <= 2 * table["seed_std"].fillna(0)) | (table["difference"].abs() < 1e-9)
    return table


def recheck(profile: Profile, results_dir: Path, run: str, scratch: Path | None = None,
            data_dir: Path | None = None) -> tuple[pd.DataFrame, float]:
    """Retrain `run` of results_dir in a scratch folder; its comparison table and the seconds it took."""
    run_dir = Path(results_dir) / "runs" / run
    cfg = RunConfig.from_dict(read_manifest(run_dir)["config"])
    scratch = Path(scratch or tempfile.mkdtemp(prefix="bayesprune-recheck-"))
    started = time.perf_counter()
    outcome: Outcome = attempt_run(cfg, profile, scratch, data_dir)
    if outcome.status != "finished":
        raise RecheckFailed(f"re-running {run} ended {outcome.status}: {outcome.message} {outcome.notebook}")
    seconds = time.perf_counter() - started
    recorded = pd.read_csv(run_dir / "pruning.csv")
    rerun = pd.read_csv(scratch / run / "pruning.csv")
    return compare(recorded, rerun, seed_spread(load_table(results_dir, "pruning"), recorded)), seconds
