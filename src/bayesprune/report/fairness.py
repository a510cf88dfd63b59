"""The fair comparison: every method, penalised baselines included, chosen on validation data by two rules.

Each search run records, every epoch, its validation accuracy as trained (`val_acc`) and after pruning
`select_fraction` of its weights by its own criterion (`val_acc_pruned`). A rule scores a run by the best epoch
of its score and picks, per method, the point with the highest score averaged over the datasets (one recipe per
method for both, as the learning-rate search did). Test images play no part.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesprune.config import SELECTIONS
from bayesprune.pipeline.results import RUN_KEYS, finished_runs, load_table
from bayesprune.report.operating_point import RULES, profile_points, recipes  # noqa: F401 - the rules' home
from bayesprune.report.reference import method_label

POINT_FIELDS = ("lr", "prior_log_sigma1", "kl_weighting")


def search_points(*results_dirs: Path) -> pd.DataFrame:
    """One row per search run of the searches given (a search and the one past its edges, read as one search): its
    method, dataset, rate and prior scale, and per rule the best validation score and its epoch, with the epochs
    trained and the training time (seconds)."""
    searched = [d for d in results_dirs if finished_runs(d)]
    if not searched:
        raise FileNotFoundError(f"no search under {', '.join(map(str, results_dirs))} has a finished run")
    return pd.concat([_points(d) for d in searched], ignore_index=True)


def _points(results_dir: Path) -> pd.DataFrame:
    """`search_points` of one search."""
    history = load_table(results_dir, "history")
    rows = []
    for keys, run in history.groupby(RUN_KEYS, sort=False):
        row = dict(zip(RUN_KEYS, keys))
        for score in SELECTIONS:
            best = run.loc[run[score].idxmax()]
            row[score], row[f"{score} epoch"] = best[score], int(best["epoch"])
        row["epochs"], row["seconds"] = int(run["epoch"].max()), float(run["seconds"].sum())
        rows.append(row)
    frame = recipes(results_dir, POINT_FIELDS).merge(pd.DataFrame(rows), on=RUN_KEYS)
    penalised = frame["method"].str.contains("-") & ~frame["method"].str.endswith("-mixture")
    frame["prior scale"] = frame["prior_log_sigma1"].where(penalised)  # log of the prior's scale, where searched
    return frame


def with_dash(points: pd.DataFrame) -> pd.DataFrame:
    """The points with '—' for the prior scale of the methods whose strength is not searched."""
    return points.astype({"prior scale": object}).fillna({"prior scale": "—"})


def choose(points: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Per method and point (rate, prior scale): the rule's score per dataset, their mean, and `chosen` on the
    point with the highest mean (a point not tried on every dataset is not compared)."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; valid choices: {', '.join(RULES)}")
    index = ["method", "lr", "prior scale"]
    table = with_dash(points).pivot_table(index=index, columns="dataset", values=rule)
    table["mean"] = table.mean(axis=1, skipna=False)
    table["chosen"] = table.groupby(level="method")["mean"].transform("max") == table["mean"]
    return table


def choices(points: pd.DataFrame) -> pd.DataFrame:
    """Per method and rule: the chosen rate and prior scale (log), and its mean validation score."""
    rows = []
    for rule, label in RULES.items():
        table = choose(points, rule)
        for (method, lr, scale), row in table[table["chosen"]].iterrows():
            rows.append({"method": method, "rule": label, "lr": lr, "prior scale": scale, "validation": row["mean"]})
    return pd.DataFrame(rows).drop_duplicates(["method", "rule"]).set_index(["method", "rule"]).sort_index()


def search_table(points: pd.DataFrame) -> pd.DataFrame:
    """Every point tried: per dataset the two rules' best validation accuracy, their epochs and the epochs trained,
    and which rule chose it."""
    table = with_dash(points).pivot_table(
        index=["method", "lr", "prior scale"], columns="dataset",
        values=["val_acc", "val_acc_pruned", "epochs"])
    for rule, label in RULES.items():
        chosen = choose(points, rule)["chosen"]
        table[(f"chosen {label}", "")] = chosen.reindex(table.index).fillna(False).astype(bool)
    return table


def strength_grid(points: pd.DataFrame) -> pd.DataFrame:
    """The penalised methods' points at the rate their strength grid ran at (the rate with the most scales per
    method), without the points that try a chosen scale at other rates."""
    searched = points.dropna(subset=["prior scale"])
    counts = searched.groupby(["method", "lr"])["prior scale"].nunique()
    grid_rate = counts.groupby(level="method").idxmax().map(lambda key: key[1])
    return searched[searched["lr"] == searched["method"].map(grid_rate)]


def strength_curves(points: pd.DataFrame) -> pd.DataFrame:
    """The penalised methods' validation scores against the prior's log scale at the grid's rate, per dataset (for
    the figure)."""
    searched = strength_grid(points)
    return searched.melt(id_vars=["dataset", "method", "lr", "prior scale"], value_vars=list(SELECTIONS),
                         var_name="score", value_name="validation accuracy")


def bracketed(points: pd.DataFrame) -> pd.DataFrame:
    """Per penalised method, dataset and rule: the chosen log scale at the grid's rate and whether it lies inside
    the grid (the ends worse on both sides) or at an end (the grid should have gone further that way)."""
    searched = strength_grid(points)
    rows = []
    for (method, dataset, lr), group in searched.groupby(["method", "dataset", "lr"]):
        scales = sorted(group["prior scale"])
        for rule, label in RULES.items():
            best = group.loc[group[rule].idxmax(), "prior scale"]
            end = "strong end" if best == scales[0] else "weak end" if best == scales[-1] else "inside"
            rows.append({"method": method, "dataset": dataset, "lr": lr, "rule": label, "best log scale": best,
                         "where": end})
    return pd.DataFrame(rows).set_index(["method", "dataset", "lr", "rule"])


def fairness_reading(points: pd.DataFrame) -> str:
    """The search in words: its size, and under each rule the method with the best mean validation score and
    where BBB ranks (the full choices are `choices`' table)."""
    chosen = choices(points)
    parts = []
    for label in RULES.values():
        rows = chosen.xs(label, level="rule").sort_values("validation", ascending=False)
        best = rows.index[0]
        rank = list(rows.index).index("bbb") + 1 if "bbb" in rows.index else None
        part = f"{label}, {method_label(best)} scores best"
        if rank and best != "bbb":
            part += f" and BBB ranks {rank} of {len(rows)}"
        parts.append(part)
    return (f"The search trained {len(points)} runs. By mean validation "
            "accuracy over both datasets at each method's chosen point: " + "; ".join(parts) + ".")