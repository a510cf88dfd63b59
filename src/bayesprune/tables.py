"""Summaries of the tidy tables in the study's layout, our numbers beside its reported ones."""

from __future__ import annotations

import pandas as pd

from .reference import FRACTIONS, METHOD_LABELS, REPORTED, method_label

PRIMARY_CRITERION = {"bbb": "snr"}  # every other method is pruned by magnitude


def method_order(methods) -> list[str]:
    """Methods in the study's row order, unknown ones last."""
    known = [m for m in METHOD_LABELS if m in set(methods)]
    return known + sorted(set(methods) - set(known))


def primary_rows(pruning: pd.DataFrame) -> pd.DataFrame:
    """Rows of each method's own criterion (SNR for BBB, magnitude otherwise)."""
    wanted = pruning["method"].map(lambda m: PRIMARY_CRITERION.get(m, "magnitude"))
    return pruning[pruning["criterion"] == wanted]


def summarise(pruning: pd.DataFrame, column: str = "accuracy_mean") -> pd.DataFrame:
    """Mean, std and number of seeds of an accuracy column per dataset, method, criterion, fraction."""
    groups = pruning.groupby(["dataset", "protocol", "method", "criterion", "fraction"])[column]
    return groups.agg(mean="mean", std="std", seeds="count").reset_index()


def study_layout(pruning: pd.DataFrame, dataset: str, protocol: str, column: str = "accuracy_mean") -> pd.DataFrame:
    """The study's Table 1/2 layout: per method and fraction, ours (mean +- std), the study's, and ours - study's."""
    rows = summarise(primary_rows(pruning), column)
    rows = rows[(rows["dataset"] == dataset) & (rows["protocol"] == protocol)]
    table = {}
    for method in method_order(rows["method"].unique()):
        line = {}
        for fraction in FRACTIONS:
            hit = rows[(rows["method"] == method) & (rows["fraction"].round(6) == fraction)]
            if hit.empty:
                continue
            mean, std, seeds = hit.iloc[0][["mean", "std", "seeds"]]
            line[(f"{fraction:.0%}", "ours")] = f"{mean:.4f}" + (f" ± {std:.4f}" if seeds > 1 else "")
            reported = REPORTED.get(dataset, {}).get(method)
            study = reported[FRACTIONS.index(fraction)] if reported else float("nan")
            line[(f"{fraction:.0%}", "study")] = f"{study:.4f}"
            line[(f"{fraction:.0%}", "diff")] = f"{mean - study:+.4f}"
        table[method_label(method)] = line
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def weight_summary(weights: pd.DataFrame) -> pd.DataFrame:
    """Std, kurtosis and near-zero share of all weights, mean over seeds, per dataset and method."""
    rows = weights[(weights["layer"].astype(str) == "all") & (weights["parameter"] == "weight")]
    summary = rows.groupby(["dataset", "protocol", "method"])[["std", "kurtosis", "near_zero_share"]].mean()
    return summary.reset_index()


def sigma_summary(weights: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of BBB's posterior sigmas (all layers), mean over seeds, per dataset and protocol."""
    rows = weights[(weights["layer"].astype(str) == "all") & (weights["parameter"] == "sigma")]
    return rows.groupby(["dataset", "protocol", "method"])[["mean", "std"]].mean().reset_index()


def ablation_table(ablation: pd.DataFrame, fraction: float = 0.9) -> pd.DataFrame:
    """BBB accuracy at one pruned fraction with each pruning-time deviation fixed alone (mean over seeds)."""
    rows = ablation[ablation["fraction"].round(6) == fraction]
    table = rows.pivot_table(index=["dataset", "protocol", "fixed"], values=["accuracy_mean", "accuracy_ensemble"])
    return table.rename(index={"none": "(nothing fixed)"}, level="fixed")
