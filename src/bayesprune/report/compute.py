"""Tables of the compute chapter, from the JSON reports `bayesprune bench` writes."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from bayesprune.pipeline.profiles import PROJECT_ROOT
from bayesprune.pipeline.results import RUN_KEYS, load_manifests, run_keys
from bayesprune.report.formatting import fraction_label, joined
from bayesprune.report.reference import STUDY_BBB_OVER_SGD, method_label


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


NETWORKS = {"": "784-500-500-10", "-2x1200": "784-1200-1200-10"}  # bench model suffix -> the network it trains


def _profiled_pairs(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(network, SGD model, BBB model) for each network whose SGD and BBB steps a bench report broke down by part."""
    parts = report.get("step_parts", {})
    return [(network, f"sgd{suffix}", f"bbb{suffix}") for suffix, network in NETWORKS.items()
            if f"sgd{suffix}" in parts and f"bbb{suffix}" in parts]


def step_parts_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """Milliseconds per step by kind of operation (bench `step_parts`), SGD beside BBB, per machine and network,
    with BBB's multiple of SGD per kind; the kinds by BBB's time, the largest first, and everything else last."""
    rows = []
    for report in reports:
        for network, sgd_model, bbb_model in _profiled_pairs(report):
            sgd, bbb = report["step_parts"][sgd_model], report["step_parts"][bbb_model]
            rest = "everything else"  # last; the kinds before it by BBB's time, the largest first
            for part in sorted(bbb, key=lambda p: (p == rest, -bbb[p])):
                rows.append({"machine": report["machine"], "network": network, "part": part, "SGD, ms": sgd[part],
                             "BBB, ms": bbb[part], "BBB / SGD": bbb[part] / sgd[part] if sgd[part] else float("nan")})
    columns = ["machine", "network", "part", "SGD, ms", "BBB, ms", "BBB / SGD"]
    return pd.DataFrame(rows, columns=columns).set_index(["machine", "network", "part"])


NETWORK_NAMES = {"784-500-500-10": "The study's network", "784-1200-1200-10": "Blundell's wider network"}


def kernel_floor_reading(reports: list[dict[str, Any]]) -> str:
    """A markdown list, an item per machine and network: BBB's timed step in SGD steps, the sampling kernel's share
    of its profiled step, and the step without it (the floor that two samples' matrix products set)."""
    sentences = []
    for report in reports:
        parts, models = report.get("step_parts", {}), report.get("models", {})
        for network, sgd, bbb in _profiled_pairs(report):
            if not (sgd in models and bbb in models):
                continue
            ratio = report.get(f"{bbb}/{sgd}", models[bbb]["step_ms"] / models[sgd]["step_ms"])
            share = parts[bbb]["sampling kernel"] / sum(parts[bbb].values())
            products = parts[bbb]["matrix products"] / parts[sgd]["matrix products"]
            sentences.append(
                f"{NETWORK_NAMES.get(network, network)} on {report['machine']}: BBB's step takes {ratio:.1f}x SGD's, its matrix products "
                f"{products:.1f}x; the sampling kernel is {share:.0%} of the step, which without it would take "
                f"{ratio * (1 - share):.1f}x SGD's.")
    return "\n".join(f"- {sentence}" for sentence in sentences) or "No bench report here has the step broken down by part (`make bench` records it)."


STALL = 3.0  # an epoch slower than this many times its run's median stalled (a paused or starved process)


def epoch_times(history: pd.DataFrame) -> pd.DataFrame:
    """Seconds per epoch per dataset, protocol and method: the median over every epoch of every seed (which a
    stalled epoch cannot carry), the slowest epoch, and how many epochs stalled (over STALL x their run's median)."""
    median = history.groupby(RUN_KEYS)["seconds"].transform("median")
    frame = history.assign(stalled=history["seconds"] > STALL * median)
    grouped = frame.groupby(["dataset", "protocol", "method"])
    return pd.DataFrame({"median seconds per epoch": grouped["seconds"].median(),
                         "slowest epoch, seconds": grouped["seconds"].max(),
                         "stalled epochs": grouped["stalled"].sum().astype(int),
                         "epochs": grouped.size()})


def run_cost_table(manifests: list[dict[str, Any]], history: pd.DataFrame) -> pd.DataFrame:
    """What a profile's runs cost per device and model: the median epoch (robust to a run paused or
    slowed for a while), the training time it implies, and the pruning sweep's time."""
    per_run = history.groupby(RUN_KEYS)["seconds"]
    epoch, epochs = per_run.median(), per_run.count()  # epochs trained: early stopping may end a run before its cap
    rows = []
    for manifest in manifests:
        keys = run_keys(manifest["config"])
        key = tuple(keys[k] for k in RUN_KEYS)
        rows.append({"device": manifest["device_name"], **keys, "epoch_seconds": epoch[key],
                     "train_minutes": epoch[key] * epochs[key] / 60,
                     "prune_minutes": manifest["notebook_seconds"]["prune"] / 60})
    grouped = pd.DataFrame(rows).groupby(["device", "dataset", "method", "protocol", "variant"])
    return pd.DataFrame({
        "runs": grouped.size(),
        "seconds per epoch": grouped["epoch_seconds"].mean(),
        "training minutes per run": grouped["train_minutes"].mean(),
        "pruning sweep minutes": grouped["prune_minutes"].mean(),
    })


SCORING_GROUPS = {"Monte Carlo passes": ("Monte Carlo passes",),
                  "deterministic passes": ("deterministic passes",),
                  "post-hoc fits": ("post-hoc calibration and Laplace",)}  # the rest of the sweep is "the rest"


def scoring_parts_table(manifests: list[dict[str, Any]]) -> pd.DataFrame:
    """Where each run's pruning notebook spent its seconds (its manifest's `prune_seconds_by_part`), beside its
    training: the passes, the rest (masks, metrics, loading, tables, diagnostics) and fine-tuning apart; runs
    from before the parts were recorded are left out."""
    rows = []
    for manifest in manifests:
        parts = manifest.get("prune_seconds_by_part")
        if not parts:
            continue
        keys = run_keys(manifest["config"])
        scoring = sum(v for k, v in parts.items() if k != "fine-tuning")
        grouped = {name: sum(parts.get(p, 0.0) for p in members) for name, members in SCORING_GROUPS.items()}
        rows.append({"dataset": keys["dataset"], "method": keys["method"], "variant": keys["variant"],
                     "training, s": manifest["train_seconds"], "scoring, s": scoring, **grouped,
                     "the rest": scoring - sum(grouped.values()), "fine-tuning, s": parts.get("fine-tuning", 0.0),
                     "scoring / training": scoring / manifest["train_seconds"] if manifest["train_seconds"] else
                     float("nan")})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).groupby(["dataset", "method", "variant"]).mean()
    return table.round({**{column: 1 for column in table.columns}, "scoring / training": 2})


def scoring_by_network_table(manifests: list[dict[str, Any]]) -> pd.DataFrame:
    """Where scoring's passes go, per pruned network: per method and criterion (rows), the mean over runs of the
    seconds spent scoring the network pruned to each fraction (columns), from each manifest's
    `prune_seconds_by_network` ("criterion at fraction"); runs from before it was recorded are left out."""
    rows = []
    for manifest in manifests:
        for name, seconds in (manifest.get("prune_seconds_by_network") or {}).items():
            criterion, fraction = name.rsplit(" at ", 1)
            rows.append({"method": manifest["config"]["method"], "criterion": criterion,
                         "fraction": float(fraction), "seconds": seconds})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).pivot_table(index=["method", "criterion"], columns="fraction", values="seconds")
    table.columns = [fraction_label(f) for f in table.columns]
    return table.round(1)


def runs_in_a_row_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """The same bench run several times in a row on one machine, a row per run (named by its file): SGD's and BBB's
    step, their ratio, the dense matmul speed before and after the timing, and what the run flagged."""
    rows = [{"run": r["name"], "SGD step (ms)": r["models"]["sgd"]["step_ms"], "BBB step (ms)": r["models"]["bbb"]["step_ms"],
             "BBB / SGD": r["bbb/sgd"], "matmul before (GFLOP/s)": r.get("matmul_gflops_before", float("nan")),
             "matmul after (GFLOP/s)": r["matmul_gflops"], "flags": len(r.get("flags", []))}
            for r in reports if {"sgd", "bbb"} <= set(r["models"])]
    return pd.DataFrame(rows).set_index("run")


def runs_in_a_row_reading(table: pd.DataFrame) -> str:
    """The spread between runs in one sentence: SGD's step, BBB's, and the ratio, lowest to highest."""
    if table.empty:
        return "No bench was run several times in a row here."
    spread = {column: (table[column].min(), table[column].max()) for column in ("SGD step (ms)", "BBB step (ms)", "BBB / SGD")}
    sgd, _, ratio = spread.values()
    return (f"Over {len(table)} runs in a row, SGD's step took {sgd[0]:.2f} to {sgd[1]:.2f} ms "
            f"({sgd[1] / sgd[0] - 1:.0%} apart), so BBB / SGD read {ratio[0]:.2f}x to {ratio[1]:.2f}x (BBB's step "
            "in the table).")


def process_speed_table(report: dict[str, Any]) -> pd.DataFrame:
    """The SGD step in fresh processes (`performance.processes`), a row per thread setting: the processes timed,
    the fastest, median and slowest process's step, and how far apart the fastest and slowest are."""
    runs = pd.DataFrame(report["runs"])
    grouped = runs.groupby("setting", sort=False)["step_ms"]
    table = pd.DataFrame({"processes": grouped.size(), "fastest (ms)": grouped.min(), "median (ms)": grouped.median(),
                          "slowest (ms)": grouped.max(), "apart (%)": 100 * (grouped.max() / grouped.min() - 1)})
    return table.round({"fastest (ms)": 2, "median (ms)": 2, "slowest (ms)": 2, "apart (%)": 0})


def process_speed_reading(table: pd.DataFrame, tolerance: float = 0.10) -> str:
    """Whether some thread setting kept every process at one speed (within tolerance), and how far apart the
    steadiest and the other settings left their processes."""
    steady = table["apart (%)"].idxmin()
    row, others = table.loc[steady], table.drop(index=steady)
    span = f"left its {int(row['processes'])} processes {row['apart (%)']:.0f} % apart"
    if row["apart (%)"] <= 100 * tolerance:
        sentence = f"One setting kept every process at one speed: {steady} {span}"
    else:
        sentence = (f"No thread setting kept every process within {tolerance:.0%} of the fastest. The steadiest, "
                    f"{steady}, {span}")
    if others.empty:
        return sentence + "."
    return sentence + f"; the other settings, {others['apart (%)'].min():.0f} to {others['apart (%)'].max():.0f} %."


def commit_time(commit: str) -> float:
    """When a commit of this project was made (seconds since the epoch), from its git history; infinity where the
    history does not have it."""
    shown = subprocess.run(["git", "show", "-s", "--format=%ct", commit], cwd=PROJECT_ROOT, capture_output=True,
                           text=True)
    return float(shown.stdout) if shown.returncode == 0 and shown.stdout.strip() else math.inf


def timed_reports(folder: Path) -> list[dict[str, Any]]:
    """Every `make time-report` report in a folder, oldest commit first (not in file-name order)."""
    return sorted(load_json_reports(folder), key=lambda report: commit_time(report["commit"]))


def report_time_table(folder: Path) -> pd.DataFrame:
    """`make report` from a fresh clone (`performance.report_time`), a row per timing, oldest commit first: minutes
    per stage and in all, and the commit timed."""
    rows = []
    for report in timed_reports(folder):
        rows.append({"machine": report["machine"], "commit": report["commit"],
                     **{f"{stage} (min)": seconds / 60 for stage, seconds in report["stages"].items()},
                     "make report (min)": report["total_seconds"] / 60})
    return pd.DataFrame(rows).set_index("machine") if rows else pd.DataFrame()


MC_SHARE = "Monte Carlo passes / training"


def report_scoring_table(folder: Path) -> pd.DataFrame:
    """What each run of the newest `make time-report` cost (`performance.report_time`): per dataset and method its
    training and scoring seconds, the share of scoring the post-hoc fits took, scoring / training, and the Monte
    Carlo passes alone against training (the floor of scoring / training while the passes stay as they are)."""
    reports = [report for report in timed_reports(folder) if report.get("runs")]
    if not reports:
        return pd.DataFrame()
    table = scoring_parts_table(reports[-1]["runs"]).droplevel("variant")
    table[MC_SHARE] = (table["Monte Carlo passes"] / table["training, s"]).round(2)
    table = table[["training, s", "scoring, s", "post-hoc fits", "scoring / training", MC_SHARE]].rename(columns={"post-hoc fits": "of which post-hoc fits, s"})
    seconds = ["training, s", "scoring, s", "of which post-hoc fits, s"]
    table[seconds] = table[seconds].round().astype(int)  # whole seconds: the runs shared the machine
    return table.drop(columns=[] if table["of which post-hoc fits, s"].any() else ["of which post-hoc fits, s"])


def report_scoring_change(folder: Path) -> pd.DataFrame:
    """Scoring before and after: per method (mean over datasets), the seconds its scoring and its Monte Carlo passes
    took in the two newest `make time-report` runs that kept their runs' timings, each headed by its commit."""
    reports = [report for report in timed_reports(folder) if report.get("runs")][-2:]
    if len(reports) < 2:
        return pd.DataFrame()
    parts = [scoring_parts_table(report["runs"]).groupby("method").mean() for report in reports]
    columns = {f"{part}, s ({report['commit']})": table[column] for part, column in
               (("scoring", "scoring, s"), ("Monte Carlo passes", "Monte Carlo passes"))
               for report, table in zip(reports, parts)}
    table = pd.DataFrame(columns).round().astype(int)
    table.index = table.index.map(method_label)
    return table.rename_axis("method")


def _ratio_span(values: pd.Series) -> str:
    """Ratios as one value or 'lowest–highest', two decimals."""
    low, high = f"{values.min():.2f}", f"{values.max():.2f}"
    return low if low == high else f"{low}–{high}"


def report_scoring_reading(table: pd.DataFrame, most: float = 0.5) -> str:
    """Which methods' scoring took at most `most` of their training in `report_scoring_table`, and for the others
    what their Monte Carlo passes alone took: the passes that compute what each network computes."""
    family = table.index.get_level_values("method").map(lambda m: "Dropout" if m.startswith("dropout") else method_label(m))
    groups = {name: rows for name, rows in table.groupby(family, sort=False)}
    share = "half" if most == 0.5 else f"{most:g}"
    met = [name for name, rows in groups.items() if (rows["scoring / training"] <= most).all()]
    missed = {name: rows for name, rows in groups.items() if (rows["scoring / training"] > most).any()}
    text = f"Scoring took at most {share} of training for {joined(met)}." if met else ""
    if missed:
        passes = [f"{_ratio_span(rows[MC_SHARE])} ({name})" for name, rows in missed.items()]
        text += (f" For {joined(list(missed))}, the Monte Carlo passes alone took {joined(passes)} of training. "
                 "Those passes compute what each network's own forward computes, 10 of them on each of three image "
                 f"sets at every fraction, so scoring cannot fall to {share} of training without fewer passes, image "
                 "sets or fractions, which would change numbers this book shows.")
    return text.strip()


def rescoring_table(folder: Path, results_root: Path) -> pd.DataFrame:
    """Runs of a reference profile trained and scored again (their manifests, copied into folder, name the profile
    and the run): the committed run's scoring (its prune notebook's seconds) beside the new one's, each with its
    commit, and new / committed."""
    rows = []
    for now in load_json_reports(folder):
        then = json.loads((Path(results_root) / now["profile"] / "runs" / now["run"] / "manifest.json").read_text())
        rows.append({"profile": now["profile"], "run": now["run"], "commit then": then["code_version"],
                     "scoring then, s": then["notebook_seconds"]["prune"], "commit now": now["code_version"],
                     "scoring now, s": now["notebook_seconds"]["prune"],
                     "now / then": now["notebook_seconds"]["prune"] / then["notebook_seconds"]["prune"]})
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).set_index(["profile", "run"]).round({"scoring then, s": 0, "scoring now, s": 0,
                                                                   "now / then": 2})


def step_ratio_text(reports: list[dict[str, Any]]) -> str:
    """BBB's training step in SGD steps, as each machine's benchmark measured it, both run eagerly:
    '3.0x (Intel(R) Xeon(R) Processor, 2 threads) and 3.3x (...) an SGD step'."""
    ratios = [f"{r['bbb/sgd']:.1f}x ({r['machine']})" for r in reports if "bbb/sgd" in r]
    return (" and ".join(ratios) + " an SGD step") if ratios else "a few SGD steps (no benchmark here)"


def load_json_reports(folder: Path) -> list[dict[str, Any]]:
    """Every JSON report in a folder (`bayesprune time-training`, `make time-report`), in name order; an empty list
    where none was made."""
    return [json.loads(path.read_text()) for path in sorted(Path(folder).glob("*.json"))]


def training_totals(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """Per timed grid: its machine, how the step was launched, runs, runs at a time and the wall time in all."""
    rows = [{"machine": r["machine"], "profile": r["profile"], "protocols": ", ".join(sorted({run["protocol"] for run in r["runs"]})),
             "step launch": r["step_launch"], "runs": len(r["runs"]), "at a time": r["jobs"],
             "epochs": sum(run["epochs"] for run in r["runs"]), "seconds in all": r["total_seconds"]}
            for r in reports]
    return pd.DataFrame(rows).set_index(["machine", "profile", "protocols"])


def training_time_table(reports: list[dict[str, Any]], manifests: list[dict[str, Any]], history: pd.DataFrame) -> pd.DataFrame:
    """Each timed run's seconds and final test accuracy, beside the final test accuracy of the same run
    in the results this book shows where those come from the same profile."""
    final = history.sort_values("epoch").groupby(RUN_KEYS)["test_acc"].last()
    shown = {manifest["profile"] for manifest in manifests}
    rows = []
    for report in reports:
        for run in report["runs"]:
            run = {"variant": "", **run}  # reports written before profiles had variants
            key = tuple(run[k] for k in RUN_KEYS)
            here = final.get(key) if report["profile"] in shown else None
            rows.append({"machine": report["machine"], **{k: run[k] for k in RUN_KEYS}, "epochs": run["epochs"],
                         "seconds": run["seconds"], "median epoch seconds": run["median_epoch_seconds"],
                         "final test accuracy": run["test_acc"], "same run in these results": here})
    return pd.DataFrame(rows).set_index(["machine", "protocol", "dataset", "method", "seed"])


def _threads(device_name: str) -> int:
    """CPU threads a manifest's device description names ('..., 2 threads'), 1 if it names none."""
    words = device_name.replace(",", " ").split()
    return int(words[words.index("threads") - 1]) if "threads" in words else 1


def profile_costs(results_dirs: list[Path]) -> pd.DataFrame:
    """What each committed profile cost: runs, epochs trained, wall hours of its notebooks and, on CPUs,
    CPU-hours (wall time x threads); GPU runs count their wall minutes."""
    rows = []
    for folder in results_dirs:
        for manifest in load_manifests(folder):
            seconds = sum(manifest["notebook_seconds"].values())
            gpu = manifest["device"] != "cpu"
            rows.append({"profile": Path(folder).name, "device": "GPU" if gpu else "CPU", "runs": 1,
                         "wall hours": seconds / 3600,
                         "CPU-hours": 0.0 if gpu else seconds * _threads(manifest["device_name"]) / 3600,
                         "GPU minutes": seconds / 60 if gpu else 0.0})
    return pd.DataFrame(rows).groupby(["profile", "device"]).sum() if rows else pd.DataFrame()
