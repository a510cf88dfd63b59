"""Tables of the compute chapter, from the JSON reports `bayesprune bench` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .config import RunConfig

STUDY_BBB_OVER_SGD = 10.0  # the study's reported ratio (about 50 min against 5 min for 50 epochs, RTX 3080)


def load_bench_reports(folder: Path) -> list[dict[str, Any]]:
    """Every bench report in a folder, named by its file."""
    reports = []
    for path in sorted(Path(folder).glob("*.json")):
        report = json.loads(path.read_text())
        report["name"] = path.stem
        reports.append(report)
    if not reports:
        raise FileNotFoundError(f"no bench reports in {folder}: run `make bench` first")
    return reports


def timing_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """Milliseconds per step, seconds per epoch and samples per second of every model on every machine."""
    rows = [{"machine": r["machine"], "model": model, **values} for r in reports for model, values in r["models"].items()]
    return pd.DataFrame(rows).set_index(["machine", "model"])


def ratio_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """BBB/SGD and the other ratios per machine, beside the study's reported 10x."""
    rows = []
    for report in reports:
        ratios = {key: value for key, value in report.items() if "/" in key}
        rows.append({"machine": report["machine"], "study's BBB/SGD": STUDY_BBB_OVER_SGD, **ratios,
                     "matmul GFLOP/s": report["matmul_gflops"],
                     "SGD share of matmul peak": report.get("sgd_matmul_share_of_peak"),
                     **{f"noise ms, {name}": ms for name, ms in report.get("noise_ms", {}).items()}})
    return pd.DataFrame(rows).set_index("machine")


def profile_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """Most expensive operations per step of each profiled model, per machine."""
    rows = [{"machine": r["machine"], "model": model, **op} for r in reports
            for model, ops in r.get("profile", {}).items() for op in ops]
    return pd.DataFrame(rows).set_index(["machine", "model", "op"])


def run_cost_table(manifests: list[dict[str, Any]]) -> pd.DataFrame:
    """Training time of a profile's runs per device and model: runs, seconds per epoch, minutes per run."""
    rows = []
    for manifest in manifests:
        cfg = RunConfig.from_dict(manifest["config"])
        rows.append({"device": manifest["device_name"], "dataset": cfg.dataset, "method": cfg.method,
                     "protocol": cfg.protocol_label, "epoch_seconds": manifest["train_seconds"] / cfg.train_epochs,
                     "train_seconds": manifest["train_seconds"], "run_seconds": sum(manifest["notebook_seconds"].values())})
    grouped = pd.DataFrame(rows).groupby(["device", "dataset", "method", "protocol"])
    return pd.DataFrame({
        "runs": grouped.size(),
        "seconds per epoch": grouped["epoch_seconds"].mean(),
        "training minutes per run": grouped["train_seconds"].mean() / 60,
        "minutes per run, pruning and notebooks included": grouped["run_seconds"].mean() / 60,
    })
