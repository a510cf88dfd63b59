"""Does pruning keep the uncertainty: each model's calibration and out-of-distribution detection against the
fraction pruned, from its own predictive distribution, and the claim judged over seeds.

Each model is read through its own criterion and its own predictive distribution: the Monte Carlo average
where it has one (BBB's posterior, MC dropout), the deterministic network otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bayesprune.compress.prune import own_criteria
from bayesprune.pipeline.results import RUN_KEYS, finished_runs, load_manifests, load_table
from bayesprune.report.formatting import DATASET_LABELS, mnist_first
from bayesprune.report.operating_point import recipes
from bayesprune.report.reference import method_label
from bayesprune.report.verdicts import HOLDS, NOT_TESTED, combine, interval

METRICS = {"nll": "test NLL", "ece": "ECE (15 bins)", "brier": "Brier score",
           "auroc_entropy_other": "AUROC, other dataset", "auroc_entropy_noise": "AUROC, uniform noise"}
ECE_SLACK = 0.01  # calibration kept: ECE at 90 % pruned at most 1 point above the unpruned network's
AUROC_SLACK = 0.02  # OOD detection kept: AUROC (entropy, the other dataset) at most 2 points below it


def has_uncertainty(results_dir: Path) -> bool:
    """Whether a profile's finished runs carry the uncertainty tables."""
    return bool(finished_runs(results_dir)) and all(
        "uncertainty.csv" in manifest["files"] for manifest in load_manifests(results_dir))


def own_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Each model's rows by its own criterion and its own prediction (Monte Carlo where it has one)."""
    own = table[[c in own_criteria(m) for m, c in zip(table["method"], table["criterion"])]]
    has_mc = own.groupby("method")["prediction"].transform(lambda p: (p == "mc").any())
    return own[(own["prediction"] == "mc") | ~has_mc]


def uncertainty_summary(table: pd.DataFrame, metrics: tuple[str, ...] = tuple(METRICS)) -> pd.DataFrame:
    """Mean and sd over seeds of each metric per dataset, method and fraction (own criterion and prediction)."""
    rows = own_rows(table[table["protocol"] == "corrected"])
    grouped = rows.groupby(["dataset", "method", rows["fraction"].round(6).rename("fraction")])[list(metrics)]
    return grouped.agg(["mean", "std"])


def at_fractions(table: pd.DataFrame, fractions: tuple[float, ...] = (0.0, 0.9, 0.98)) -> pd.DataFrame:
    """The chapter's table: each metric's mean over seeds at the shown fractions, per dataset and method."""
    summary = uncertainty_summary(table).xs("mean", axis=1, level=1)
    shown = summary[summary.index.get_level_values("fraction").isin(fractions)].reset_index()
    shown["method"] = shown["method"].map(method_label)
    shown["fraction"] = [f"{100 * f:g} %" for f in shown["fraction"]]
    return shown.rename(columns=METRICS).set_index(["dataset", "method", "fraction"])


def keeps_uncertainty(table: pd.DataFrame, method: str, fraction: float = 0.9) -> tuple[str, str]:
    """Whether one model keeps its calibration and OOD detection at `fraction` pruned: per seed, ECE rises by at
    most ECE_SLACK and AUROC (entropy, the other dataset) falls by at most AUROC_SLACK, the intervals over seeds
    inside those bounds on every dataset. Returns (verdict, evidence)."""
    rows = own_rows(table[(table["protocol"] == "corrected") & (table["method"] == method)])
    verdicts, lines = [], []
    for dataset, runs in rows.groupby("dataset"):
        by_seed = runs.pivot_table(index="seed", columns=runs["fraction"].round(6),
                                   values=["ece", "auroc_entropy_other"])
        if 0.0 not in by_seed["ece"] or fraction not in by_seed["ece"]:
            continue
        ece = interval(by_seed["ece"][fraction] - by_seed["ece"][0.0])
        auroc = interval(by_seed["auroc_entropy_other"][0.0] - by_seed["auroc_entropy_other"][fraction])
        verdicts += [ece.below(ECE_SLACK), auroc.below(AUROC_SLACK)]
        lines.append(f"{DATASET_LABELS.get(dataset, dataset)}: ECE rose {ece.text(3)}, AUROC fell {auroc.text(3)}")
    return (combine(verdicts) if verdicts else NOT_TESTED), "; ".join(lines)


def pruning_keeps_uncertainty(table: pd.DataFrame | None) -> dict[str, Any]:
    """The claim: pruned BBB keeps its calibration and its OOD detection at 90 %, the same rule applied to every
    other model for comparison."""
    claim = {"claim": "Pruned BBB keeps its calibration and its OOD detection at 90 %",
             "study": "not examined (accuracy only)", "see": ("uncertainty",)}
    if table is None or "bbb" not in set(table["method"]):
        return {**claim, "ours": "no uncertainty tables", "verdict": NOT_TESTED}
    verdict, evidence = keeps_uncertainty(table, "bbb")
    others = []
    for method in sorted(set(table["method"]) - {"bbb"}):
        kept, _ = keeps_uncertainty(table, method)
        others.append(f"{method_label(method)} {'keeps' if kept.startswith(HOLDS) else kept}")
    rule = f"BBB at 90 % against unpruned (kept: ECE rises ≤ {ECE_SLACK}, AUROC falls ≤ {AUROC_SLACK})"
    return {**claim, "verdict": verdict, "ours": f"{rule}: {evidence}; the same rule for the others: {', '.join(others)}",
            "parts": [f"{rule}:", *evidence.split("; "), f"the same rule for the others: {', '.join(others)}"]}


def uncertainty_reading(table: pd.DataFrame) -> str:
    """The chapter's answer in words: the claim's verdict, BBB's AUROC against the other dataset unpruned and at
    90 % pruned per dataset, and how many other models keep their uncertainty by the same rule."""
    claim = pruning_keeps_uncertainty(table)
    summary = uncertainty_summary(table, ("auroc_entropy_other",)).xs("mean", axis=1, level=1)
    moves = []
    for dataset in mnist_first(summary.index.get_level_values("dataset")):
        at = summary.xs(dataset, level="dataset")
        if "bbb" in at.index.get_level_values("method") and {0.0, 0.9} <= set(at.loc["bbb"].index):
            auroc = at.loc["bbb", "auroc_entropy_other"]
            moves.append(f"from {auroc.loc[0.0]:.2f} to {auroc.loc[0.9]:.2f} on {DATASET_LABELS.get(dataset, dataset)}")
    others = sorted(set(table["method"]) - {"bbb"})
    kept = sum(keeps_uncertainty(table, m)[0].startswith(HOLDS) for m in others)
    text = f"Pruned BBB keeps its calibration and its OOD detection at 90 %: {claim['verdict']}."
    if moves:
        text += " At 90 % pruned its AUROC against the other dataset goes " + " and ".join(moves) + "."
    return text + f" By the same rule, {kept} of the {len(others)} other models keep theirs."


def load_uncertainty(*candidates: Path) -> tuple[Path | None, pd.DataFrame | None, pd.DataFrame | None]:
    """The first results folder whose runs all carry the uncertainty tables, with its uncertainty and reliability
    tables (None where no folder has them); of a folder that holds both selection rules, the runs kept as
    trained."""
    for folder in candidates:
        if has_uncertainty(Path(folder)):
            runs = recipes(folder, ("select",))
            kept = runs.loc[runs["select"] == "val_acc", RUN_KEYS]
            tables = [load_table(folder, name).merge(kept, on=RUN_KEYS) for name in ("uncertainty", "reliability")]
            return Path(folder), *tables
    return None, None, None
