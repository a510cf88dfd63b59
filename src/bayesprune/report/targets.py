"""Every method chosen for the sparsity it is judged at: the target search read under each rule.

Each run of the search records, every epoch, its dense validation accuracy and its validation accuracy after
pruning 90, 95, 98 and 99 % by its own criterion. The rule chosen for f picks, per dataset and method, the point
(rate, prior scale) and epoch with the best validation accuracy pruned to f among every epoch of every point whose
dense validation accuracy lies within SELECTION_MARGIN of the method's best; the rule "as trained" takes the best
dense validation accuracy. Each choice says whether its prior scale lies at an end of the scales tried (the grid
should go further that way), and what the method's search cost. Test images play no part.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesprune.config import SELECTION_MARGIN, TARGET_RULES, TARGETS, target_score
from bayesprune.pipeline.results import RUN_KEYS, finished_runs, load_table
from bayesprune.report.operating_point import recipes

RULE_LABELS = {"val_acc": "as trained", **{rule: f"chosen for {round(100 * f)} %" for rule, f in
                                           zip(TARGET_RULES, TARGETS)}}
POINT_FIELDS = ("lr", "prior_log_sigma1")


def search_history(*results_dirs: Path) -> pd.DataFrame:
    """Every epoch of every run of the searches given, with its point: rate and prior scale (NaN for a method
    without a prior)."""
    searched = [d for d in results_dirs if finished_runs(d)]
    if not searched:
        raise FileNotFoundError(f"no search under {', '.join(map(str, results_dirs))} has a finished run")
    # the point's rate from its configuration (the history's `lr` is each epoch's rate under a schedule)
    frames = [load_table(d, "history").drop(columns="lr", errors="ignore").merge(recipes(d, POINT_FIELDS), on=RUN_KEYS)
              for d in searched]
    history = pd.concat(frames, ignore_index=True)
    priored = history["method"].str.contains("-") | (history["method"] == "bbb")
    history["prior scale"] = history["prior_log_sigma1"].where(priored)
    return history


def rule_choice(runs: pd.DataFrame, rule: str) -> pd.Series:
    """The epoch (a row of runs, every epoch of every point of one method and dataset) a rule picks: the best dense
    validation accuracy, or chosen for f the best pruned to f among rows within the margin of the best dense one;
    the earliest epoch of the earliest point on ties."""
    if rule == "val_acc":
        return runs.loc[runs["val_acc"].idxmax()]
    score = target_score(rule)
    eligible = runs[runs["val_acc"] >= runs["val_acc"].max() - SELECTION_MARGIN - 1e-12]
    return eligible.loc[eligible[score].idxmax()]


def target_choices(history: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, method and rule: the chosen point and epoch, its dense validation accuracy and its accuracy
    pruned to each target, where the chosen scale lies in the scales tried, and the method's search cost."""
    rows = []
    for (dataset, method), runs in history.groupby(["dataset", "method"], sort=False):
        scales = sorted(runs["prior scale"].dropna().unique())
        rates = sorted(runs["lr"].unique())
        epochs = runs.groupby("variant")["epoch"].max()
        for rule, label in RULE_LABELS.items():
            chosen = rule_choice(runs, rule)
            scale = chosen["prior scale"]
            where = "—" if pd.isna(scale) else _end(scale, scales, "strong end", "weak end")
            rows.append({"dataset": dataset, "method": method, "rule": label, "lr": chosen["lr"], "prior scale": scale,
                         "scale in grid": where, "rate in grid": _end(chosen["lr"], rates, "slow end", "fast end"),
                         "epoch": int(chosen["epoch"]),
                         "stopped at": int(epochs[chosen["variant"]]), "val_acc": chosen["val_acc"],
                         **{f"pruned {round(100 * f)} %": chosen[target_score(r)] for r, f in zip(TARGET_RULES, TARGETS)},
                         "points tried": len(epochs), "search epochs": int(epochs.sum()),
                         "search hours": runs["seconds"].sum() / 3600})
    return pd.DataFrame(rows).set_index(["dataset", "method", "rule"])


def _end(value: float, tried: list[float], low: str, high: str) -> str:
    """Where a chosen value lies among the values tried: at the low or the high end, inside, or '—' where one was
    tried (nothing to bracket)."""
    if len(tried) < 2:
        return "—"
    return low if value == tried[0] else high if value == tried[-1] else "inside"


SCALE_STEP, RATE_STEP = 1.0, 10 ** 0.5  # one step of the searches' grids: e^1 in prior scale, half a decade in rate


def grid_extensions(choices: pd.DataFrame) -> pd.DataFrame:
    """The search's rule for its own edges: wherever any rule chose a point at an end of the scales or rates tried,
    one more point one step past that end (the same for every method); empty once every choice lies inside."""
    rows = []
    for (dataset, method), rules in choices.groupby(level=["dataset", "method"], sort=False):
        for column, ends, step in (("scale in grid", {"strong end": -1, "weak end": 1}, SCALE_STEP),
                                   ("rate in grid", {"slow end": -1, "fast end": 1}, RATE_STEP)):
            for end, sign in ends.items():
                chosen = rules[rules[column] == end]
                if chosen.empty:
                    continue
                first = chosen.iloc[0]
                point = ({"lr": first["lr"], "prior scale": first["prior scale"] + sign * step} if column == "scale in grid"
                         else {"lr": first["lr"] * step ** sign, "prior scale": first["prior scale"]})
                rows.append({"dataset": dataset, "method": method, "past": end, **point,
                             "asked by": ", ".join(chosen.index.get_level_values("rule"))})
    return pd.DataFrame(rows, columns=["dataset", "method", "past", "lr", "prior scale", "asked by"])


def chosen_points(choices: pd.DataFrame) -> pd.DataFrame:
    """The distinct points the rules chose per dataset and method, and the rules that chose each: what the seeds
    are trained at."""
    frame = choices.reset_index()
    grouped = frame.groupby(["dataset", "method", "lr", "prior scale"], dropna=False)["rule"]
    return grouped.apply(lambda rules: ", ".join(rules)).rename("chosen by").to_frame()
