"""Every method chosen for the sparsity it is judged at: the target search read under each rule.

Each run of the search records, every epoch, its dense validation accuracy and its validation accuracy after
pruning 90, 95, 98 and 99 % by its own criterion. The rule chosen for f picks, per dataset and method, the point
(rate, prior scale) and epoch with the best validation accuracy pruned to f among every epoch of every point whose
dense validation accuracy lies within SELECTION_MARGIN of the method's best; the rule "as trained" takes the best
dense validation accuracy. Each choice says whether its prior scale lies at an end of the scales tried (the grid
should go further that way), and what the method's search cost. Test images play no part.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bayesprune.config import SELECTION_MARGIN, TARGET_RULES, TARGETS, target_score
from bayesprune.pipeline.results import RUN_KEYS, finished_runs, load_table
from bayesprune.report.formatting import DATASET_LABELS, mnist_first, places, rate_text
from bayesprune.report.operating_point import recipes
from bayesprune.report.reference import method_label
from bayesprune.report.verdicts import COLLAPSES
from bayesprune.training.train import chosen_epoch

RULE_LABELS = {"val_acc": "as trained", **{rule: f"chosen for {round(100 * f)} %" for rule, f in
                                           zip(TARGET_RULES, TARGETS)}}
POINT_FIELDS = ("lr", "prior_log_sigma1")


def has_targets(results_dir: Path) -> bool:
    """Whether a profile's runs record the per-target scores (its own search stands in for the target search)."""
    return any("val_acc_pruned98" in path.read_text().split("\n", 1)[0]
               for path in Path(results_dir).glob("runs/*/history.csv"))


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
    scores = [target_score(rule) for rule in TARGET_RULES]
    history = history.dropna(subset=[s for s in scores if s in history]) if set(scores) <= set(history) else \
        history.iloc[:0]  # only runs that recorded every target: a search's, not a plain profile's
    if history.empty:
        raise FileNotFoundError(f"no run under {', '.join(map(str, searched))} recorded the targets' scores")
    priored = history["method"].str.contains("-") | (history["method"] == "bbb")
    history["prior scale"] = history["prior_log_sigma1"].where(priored)
    return history


def rule_choice(runs: pd.DataFrame, rule: str) -> pd.Series:
    """The epoch (a row of runs, every epoch of every point of one method and dataset) a rule picks, by the rule
    training applies to one run's epochs (`training.train.chosen_epoch`) applied to all of them at once: the best
    dense validation accuracy, or chosen for f the best pruned to f within the margin of the best dense one; the
    first in the rows' order on ties."""
    return runs.iloc[chosen_epoch(runs.to_dict("records"), rule) - 1]


def kept_epochs(results_dir: Path, history: pd.DataFrame) -> pd.Series:
    """Per run: the epoch its checkpoint rule kept (`training.train.chosen_epoch`, the rule training applied, targets
    included; the last epoch when it trained without patience)."""
    runs = recipes(results_dir, ("select", "patience")).merge(history, on=RUN_KEYS)
    kept = {}
    for keys, run in runs.sort_values("epoch").groupby(RUN_KEYS, sort=False):
        index = chosen_epoch(run.to_dict("records"), run["select"].iloc[0]) if run["patience"].iloc[0] else len(run)
        kept[keys] = int(run["epoch"].iloc[index - 1])
    return pd.Series(kept, name="epoch kept").rename_axis(RUN_KEYS)


def run_caps(results_dir: Path) -> pd.DataFrame:
    """Per finished run: its keys and its cap, the most epochs its recipe lets it train."""
    return recipes(results_dir, ("epochs",)).rename(columns={"epochs": "cap"})


def under_highest_cap(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run as it stands (its keys and `cap`, from several profiles): where a run was trained again
    under a higher cap, the rows of that one alone, in place of its capped twin's."""
    return frame[frame["cap"] == frame.groupby(RUN_KEYS)["cap"].transform("max")]


def run_epochs(results_dir: Path) -> pd.DataFrame:
    """Per finished run: its keys, the epoch its rule kept (`kept_epochs`), the epochs it trained and its cap."""
    history = load_table(results_dir, "history")
    return pd.concat([kept_epochs(results_dir, history), history.groupby(RUN_KEYS)["epoch"].max().rename("trained"),
                      run_caps(results_dir).set_index(RUN_KEYS)["cap"]], axis=1, join="inner").reset_index()


def span(values: pd.Series, between: str = "–") -> int | str:
    """Integers as their one value, else as 'lowest–highest' (`between` joins the two)."""
    low, high = int(values.min()), int(values.max())
    return low if low == high else f"{low}{between}{high}"


def against_cap(runs: pd.DataFrame) -> dict[str, int | str]:
    """Some runs' `run_epochs` in one row: the seeds, the epochs kept (fewest to most), the most epochs one trained,
    the cap, and the runs the cap stopped (patience never ended them) or whose kept epoch is the cap's last."""
    return {"seeds": runs["seed"].nunique(), "epoch kept": str(span(runs["epoch kept"])),
            "most epochs trained": int(runs["trained"].max()), "cap": span(runs["cap"]),
            "stopped by the cap": int((runs["trained"] >= runs["cap"]).sum()),
            "kept the cap's last epoch": int((runs["epoch kept"] >= runs["cap"]).sum())}


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


SEARCH_VALIDATION = 10_000  # images in every search's validation split


def edge_tolerance(accuracy: float) -> float:
    """One standard error of the difference of two validation accuracies near `accuracy` on SEARCH_VALIDATION
    images, a step noise alone could take: 0.0020 near 0.98 (MNIST), 0.0044 near 0.89 (Fashion-MNIST)."""
    return math.sqrt(2 * accuracy * (1 - accuracy) / SEARCH_VALIDATION)


def _rule_score(runs: pd.DataFrame, floor: float, rule: str) -> float:
    """One point's best score under a rule (its label) among its epochs above the method's dense floor."""
    if rule == "as trained":
        return runs["val_acc"].max()
    eligible = runs[runs["val_acc"] >= floor]
    score = target_score({label: code for code, label in RULE_LABELS.items()}[rule])
    return eligible[score].max() if len(eligible) else float("-inf")


def grid_extensions(choices: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The search's rule for its own edges: wherever a rule chose a point at an end of the scales or rates tried,
    one more point one step past that end (the same for every method), unless the curve has flattened there: the
    end beats every other point along its axis by no more than `edge_tolerance` under that rule, a step noise
    alone could take (an inner point that dipped by noise does not make a flat end look like a rise). Empty once
    every choice lies inside or on a flat end."""
    rows = []
    for (dataset, method), rules in choices.groupby(level=["dataset", "method"], sort=False):
        runs = history[(history["dataset"] == dataset) & (history["method"] == method)]
        floor = runs["val_acc"].max() - SELECTION_MARGIN - 1e-12
        for column, ends, step in (("scale in grid", {"strong end": -1, "weak end": 1}, SCALE_STEP),
                                   ("rate in grid", {"slow end": -1, "fast end": 1}, RATE_STEP)):
            for end, sign in ends.items():
                asking = []
                for (_, _, rule), row in rules[rules[column] == end].iterrows():
                    if column == "scale in grid":
                        same = runs[runs["lr"] == row["lr"]]
                        axis, value = "prior scale", row["prior scale"]
                    else:
                        same = runs[runs["prior scale"].isna()] if pd.isna(row["prior scale"]) else \
                            runs[runs["prior scale"] == row["prior scale"]]
                        axis, value = "lr", row["lr"]
                    others = [_rule_score(point, floor, rule) for _, point in same[same[axis] != value].groupby(axis)]
                    chosen = _rule_score(same[same[axis] == value], floor, rule)
                    best = max(others, default=float("-inf"))
                    if not others or chosen - best > edge_tolerance((chosen + max(best, 0.0)) / 2):
                        asking.append((rule, row))
                if asking:
                    first = asking[0][1]
                    point = ({"lr": first["lr"], "prior scale": first["prior scale"] + sign * step}
                             if column == "scale in grid" else
                             {"lr": first["lr"] * step ** sign, "prior scale": first["prior scale"]})
                    rows.append({"dataset": dataset, "method": method, "past": end, **point,
                                 "asked by": ", ".join(rule for rule, _ in asking)})
    return pd.DataFrame(rows, columns=["dataset", "method", "past", "lr", "prior scale", "asked by"])


def chosen_points(choices: pd.DataFrame) -> pd.DataFrame:
    """The distinct points the rules chose per dataset and method, and the rules that chose each: what the seeds
    are trained at."""
    frame = choices.reset_index()
    grouped = frame.groupby(["dataset", "method", "lr", "prior scale"], dropna=False)["rule"]
    return grouped.apply(lambda rules: ", ".join(rules)).rename("chosen by").to_frame()


def scale_curves(history: pd.DataFrame) -> pd.DataFrame:
    """For the figure: each point's best validation accuracy as trained and pruned to each target (over its own
    epochs), against its prior scale, for the methods with a prior, per dataset and rate."""
    priored = history[history["prior scale"].notna()]
    columns = {"val_acc": "dense", **{target_score(r): f"pruned {round(100 * f)} %" for r, f in zip(TARGET_RULES, TARGETS)}}
    best = priored.groupby(["dataset", "method", "lr", "prior scale"])[list(columns)].max().reset_index()
    return best.melt(id_vars=["dataset", "method", "lr", "prior scale"], value_vars=list(columns),
                     var_name="score", value_name="validation accuracy").replace({"score": columns})


def choice_table(choices: pd.DataFrame) -> pd.DataFrame:
    """The search's choices at a glance: per dataset and method a column per rule, each cell the point it chose
    (the prior scale e^s, or the rate for a method without a prior) and that rule's validation score there."""
    def cell(row: pd.Series, rule: str) -> str:
        score = row["val_acc"] if rule == "as trained" else row[rule.replace("chosen for", "pruned")]
        point = f"Adam {rate_text(row['lr'])}" if pd.isna(row["prior scale"]) else f"e^{row['prior scale']:g}"
        return f"{point}: {score:.3f}"

    table = {}
    for (dataset, method, rule), row in choices.iterrows():
        table.setdefault((dataset, method), {})[rule] = cell(row, rule)
    frame = pd.DataFrame.from_dict(table, orient="index")[list(RULE_LABELS.values())]
    frame.index = frame.index.set_names(["dataset", "method"])
    return frame


MATCHED = ("bbb", "sgd-mixture")  # one prior family, the scale mixture, under two inferences: BBB and MAP


def matched_prior(history: pd.DataFrame, choices: pd.DataFrame) -> pd.DataFrame:
    """BBB against MAP under the same prior, at the same slab: per dataset and target, the slab e^s BBB was chosen
    at, BBB's validation accuracy pruned to the target there (the rule chosen for it), MAP's at the slab it tried
    nearest to BBB's (the same rule, its own epochs within the margin of its best), and MAP's at its own choice."""
    rows = []
    for dataset in mnist_first(choices.index.get_level_values("dataset")):
        runs = history[(history["dataset"] == dataset) & (history["method"] == MATCHED[1])]
        if runs.empty or (dataset, MATCHED[0]) not in choices.droplevel("rule").index:
            continue
        floor = runs["val_acc"].max() - SELECTION_MARGIN - 1e-12
        for rule, target in zip(TARGET_RULES, TARGETS):
            label, score = RULE_LABELS[rule], f"pruned {round(100 * target)} %"
            bbb, own = choices.loc[(dataset, MATCHED[0], label)], choices.loc[(dataset, MATCHED[1], label)]
            same_rate = runs[runs["lr"] == bbb["lr"]]
            tried = same_rate["prior scale"].dropna().unique()
            if not len(tried):
                continue
            nearest = min(tried, key=lambda s: (abs(s - bbb["prior scale"]), -s))
            rows.append({"dataset": dataset, "target": target, "BBB slab": bbb["prior scale"], "BBB": bbb[score],
                         "MAP slab": nearest,
                         "MAP at that slab": _rule_score(same_rate[same_rate["prior scale"] == nearest], floor, label),
                         "MAP's own slab": own["prior scale"], "MAP at its own": own[score]})
    return pd.DataFrame(rows)


def matched_prior_reading(table: pd.DataFrame, target: float = 0.98) -> str:
    """One clause per dataset at a target, MAP at BBB's slab against BBB, and what follows on seed 0: the prior alone
    falls short where MAP trails BBB by more than `edge_tolerance` on every dataset, matches it where it never does."""
    rows = table[table["target"] == target]
    if rows.empty:
        return "MAP under the scale mixture has not been trained at BBB's slab."
    parts, short = [], []
    for _, row in rows.iterrows():
        slab = (f"e^{row['BBB slab']:g}" if row["BBB slab"] == row["MAP slab"]
                else f"e^{row['MAP slab']:g}, the nearest it tried to BBB's e^{row['BBB slab']:g}")
        parts.append(f"on {DATASET_LABELS.get(row['dataset'], row['dataset'])}, MAP at BBB's slab ({slab}) keeps "
                     f"{row['MAP at that slab']:.3f} against BBB's {row['BBB']:.3f}")
        short.append(row["BBB"] - row["MAP at that slab"] > edge_tolerance(row["BBB"]))
    verdict = (" The prior alone does not prune as the posterior does." if all(short) else
               " At BBB's slab the prior alone does as well." if not any(short) else "")
    return (f"Under one prior, the scale mixture, validation accuracy pruned to {round(100 * target)} % (seed 0): "
            + "; ".join(parts) + "." + verdict)


def search_cost(choices: pd.DataFrame) -> pd.DataFrame:
    """What the search cost per dataset and method: the points tried, the epochs they trained and the hours."""
    first = choices.groupby(level=["dataset", "method"], sort=False).first()
    return first[["points tried", "search epochs", "search hours"]]


def every_point(history: pd.DataFrame) -> pd.DataFrame:
    """Every point of the search with its best validation scores over its epochs (dense and pruned to each
    target), the epochs it trained and its hours: the whole search, for the reader who wants to redo a choice."""
    scores = ["val_acc", *(target_score(rule) for rule in TARGET_RULES)]
    keys = ["dataset", "method", "lr", "prior scale"]
    table = history.groupby(keys, dropna=False).agg(**{s: (s, "max") for s in scores}, epochs=("epoch", "max"),
                                                     hours=("seconds", lambda x: x.sum() / 3600))
    return table.rename(columns={"val_acc": "dense", **{target_score(r): f"pruned {round(100 * f)} %"
                                                          for r, f in zip(TARGET_RULES, TARGETS)}})


RULE_CODES = {"as trained": "val_acc", **{label: rule for rule, label in RULE_LABELS.items() if rule != "val_acc"}}
VARIANT_NAMES = {"val_acc": "as-trained", **{rule: rule for rule in TARGET_RULES}}


def point_config(lr: float, prior_log_sigma1: float) -> dict[str, float]:
    """A chosen point as a profile's `method_config` writes it: its rate, and its prior scale where it has one."""
    return {"lr": float(lr), **({} if pd.isna(prior_log_sigma1) else {"prior_log_sigma1": float(prior_log_sigma1)})}


def seed_variants(choices: pd.DataFrame, dataset: str) -> dict[str, dict]:
    """The variants of a profile that trains one dataset's chosen points on further seeds, as profiles.yml writes
    them: per rule its `select` and each method's point (`method_config`), so that every method is judged under
    the rule chosen for its target; a point several rules chose trains once (`runner.trained_sibling`)."""
    variants = {}
    for rule_label, rows in choices.xs(dataset, level="dataset").groupby(level="rule", sort=False):
        code = RULE_CODES[rule_label]
        config = {method: point_config(row["lr"], row["prior scale"]) for (method, _), row in rows.iterrows()}
        variants[VARIANT_NAMES[code]] = {"select": code, "method_config": config}
    return variants


PLAIN = ("sgd", "dropout0.5")  # the study's baselines, trained without a prior


def target_search_answer(choices: pd.DataFrame) -> str:
    """The search's outcome on validation data: from which target on the plain baselines collapse (lose more than
    COLLAPSES, every one on every dataset) in a sentence, then a list of where each leader leads, BBB first."""
    cells = []
    for dataset in mnist_first(choices.index.get_level_values("dataset")):
        for rule, target in zip(TARGET_RULES, TARGETS):
            chosen = choices.xs((dataset, RULE_LABELS[rule]), level=("dataset", "rule"))
            cells.append((dataset, target, chosen, chosen[f"pruned {round(100 * target)} %"]))
    if not cells:
        return "The target search has not run."
    collapsed = [target for target in TARGETS if all(
        chosen.loc[m, "val_acc"] - scores[m] > COLLAPSES for _, t, chosen, scores in cells if t == target
        for m in PLAIN if m in scores)]
    sentences = []
    if collapsed and collapsed == [t for t in TARGETS if t >= collapsed[0]]:
        sentences.append(f"The plain baselines (SGD, Dropout 0.5) collapse from {round(100 * collapsed[0])} % pruned "
                         "on, whatever their rate.")
    led: dict[str, list[tuple[str, float]]] = {}
    for dataset, target, _, scores in cells:
        led.setdefault(scores.idxmax(), []).append((dataset, target))
    where = {"bbb": places(led.pop("bbb")) if "bbb" in led else "nowhere",
             **{method: places(at) for method, at in led.items()}}
    leaders = ";\n".join(f"- {method_label(method)}: {at}" for method, at in where.items())
    return " ".join(sentences + ["Who leads where:"]) + f"\n\n{leaders}."


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def target_search_reading(choices: pd.DataFrame) -> str:
    """The search's outcome in words (Markdown): per dataset and target, the method with the best validation
    accuracy pruned to the target under the rule chosen for it, and where BBB ranks; one line each, two numbers."""
    lines = []
    for dataset in mnist_first(choices.index.get_level_values("dataset")):
        for rule, target in zip(TARGET_RULES, TARGETS):
            scores = choices.xs((dataset, RULE_LABELS[rule]), level=("dataset", "rule"))[
                f"pruned {round(100 * target)} %"].sort_values(ascending=False)
            where = f"{DATASET_LABELS.get(dataset, dataset)}, {round(100 * target)} %"
            best = scores.index[0]
            if "bbb" not in scores:
                lines.append(f"- {where}: {method_label(best)} leads ({scores.iloc[0]:.3f}).")
            elif best == "bbb":
                lines.append(f"- {where}: BBB leads ({scores.iloc[0]:.3f}); the next, {method_label(scores.index[1])}, "
                             f"{scores.iloc[1]:.3f}.")
            else:
                rank = ORDINALS[list(scores.index).index("bbb")]
                lines.append(f"- {where}: {method_label(best)} leads ({scores.iloc[0]:.3f}); BBB {scores['bbb']:.3f}, "
                             f"{rank} of {len(scores)}.")
    return ("Validation accuracy pruned to each target, every method at the point and epoch chosen for that target "
            "(seed 0):\n\n" + "\n".join(lines))
