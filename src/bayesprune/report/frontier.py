"""The compression frontier: test error against compression ratio for every method and pruning schedule, the
Pareto front, the best ratio within a tolerance of each method's dense error, and the published anchors."""

from __future__ import annotations

import json
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd

from bayesprune.evaluate.scores import THRESHOLD_CRITERION, UNIT_THRESHOLD_CRITERION
from bayesprune.compress.prune import own_criteria
from bayesprune.config import RunConfig
from bayesprune.model.group_nj import UNIT_THRESHOLD
from bayesprune.pipeline.results import RUN_KEYS, dense_architectures, finished_runs, has_table, load_manifests, load_table
from bayesprune.report.formatting import DATASET_LABELS, fraction_label, joined, mnist_first, rate_text
from bayesprune.report.fairness import choices, search_points, search_table, with_dash
from bayesprune.report.operating_point import RULES, choose_learning_rates
from bayesprune.report.reference import BLUNDELL_COMPRESSION, LENET_ANCHORS, SPARSE_VD_LAYER_SPARSITY, method_label
from bayesprune.report.structured import has_bcgnj
from bayesprune.report.targets import kept_epochs, run_caps, run_epochs, span, under_highest_cap
from bayesprune.report.tables import method_order
from bayesprune.report.verdicts import combine, difference, interval

SCHEDULE_LABELS = {"none": "pruned once, no fine-tuning", "one-shot": "pruned once, then fine-tuned",
                   "iterative": "pruned step by step, fine-tuned after each step"}
TOLERANCES = (0.1, 0.5)  # points of test error above a method's dense error
SERIES = ["dataset", "method", "criterion", "schedule"]
AS_TRAINED = {THRESHOLD_CRITERION: "as trained (log alpha > 3)",  # a network that sets its own sparsity: one point
              UNIT_THRESHOLD_CRITERION: f"as trained (units above log alpha {UNIT_THRESHOLD:g} removed)"}


def _own(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each method's own criterion (BBB's SNR as defined; the as-trained networks too)."""
    own = [criterion in own_criteria(method)[:1] or criterion in AS_TRAINED
           for method, criterion in zip(frame["method"], frame["criterion"])]
    return frame[own]


def as_points(pruning: pd.DataFrame, finetuned: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every pruned network of the corrected runs, one row each: dataset, method, seed, criterion, schedule ('none'
    for the pruning sweep, else the fine-tuning schedule), fraction, test error (%) and the footprint columns
    (tables written before the footprint was recorded get the weights' compression ratio 1 / (1 - sparsity))."""
    parts = [pruning.assign(schedule="none", finetune_epochs=0)] + ([finetuned] if finetuned is not None else [])
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["protocol"] == "corrected"].copy()
    frame["error"] = 100 * (1 - frame["accuracy_mean"])
    frame["fraction"] = frame["fraction"].round(6)
    weights_ratio = 1 / (1 - frame.get("achieved_sparsity", frame["fraction"]))
    frame["compression"] = frame["compression"].fillna(weights_ratio) if "compression" in frame else weights_ratio
    if "nonzero" not in frame:
        frame["nonzero"] = np.nan
    return frame


def load_finetuned(results_dir: Path) -> pd.DataFrame | None:
    """A profile's fine-tuned pruning sweeps, or None where no run has any."""
    if has_table(results_dir, "finetuned"):
        return load_table(results_dir, "finetuned")
    return None


RATE_KEYS = ["dataset", "method", "variant", "schedule", "finetune_rate"]


def _rate_keyed(finetuned: pd.DataFrame) -> pd.DataFrame:
    """The columns a fine-tuning rate is chosen within, a run without a variant under the variant ''."""
    keyed = finetuned.reindex(columns=RATE_KEYS)
    return keyed.assign(variant=keyed["variant"].astype(object).fillna(""))


def rate_choice(finetuned: pd.DataFrame) -> pd.Series:
    """Per dataset, method, variant (the point a profile trains it at), schedule and fine-tuning rate (a factor of
    the training rate): the validation accuracy of the fine-tuned networks, mean over fractions and seeds, and which
    rate each (dataset, method, variant, schedule) chooses by it."""
    means = finetuned["val_accuracy"].groupby([column for _, column in _rate_keyed(finetuned).items()]).mean()
    chosen = means.groupby(level=RATE_KEYS[:-1]).transform("max") == means
    return pd.DataFrame({"validation accuracy": means, "chosen": chosen})


def at_chosen_rate(finetuned: pd.DataFrame | None) -> pd.DataFrame | None:
    """The fine-tuned rows at the rate `rate_choice` picks, where several rates were tried and validation
    accuracy was recorded; else all of them."""
    if finetuned is None or "finetune_rate" not in finetuned or finetuned["finetune_rate"].nunique() < 2:
        return finetuned
    if "val_accuracy" not in finetuned or finetuned["val_accuracy"].isna().all():
        return finetuned
    choice = rate_choice(finetuned)
    kept = {key for key, chosen in choice["chosen"].items() if chosen}
    return finetuned[[key in kept for key in _rate_keyed(finetuned).itertuples(index=False, name=None)]]


def superseded(tables: list[pd.DataFrame | None], trains: list[set] | None = None) -> pd.DataFrame | None:
    """Tables of several profiles stacked, where a later profile trains a (dataset, method) the rows of earlier ones
    for it dropped: Sparse VD on its authors' schedule (`sparsevd-schedule`) replaces the frontier's early-stopped
    Sparse VD. `trains`: per profile, the (dataset, method) pairs it trains (default: those its table holds). None
    where no profile has the table."""
    trains = trains or [set() if t is None else set(zip(t["dataset"], t["method"])) for t in tables]
    kept = []
    for index, table in enumerate(tables):
        if table is not None:
            later = set().union(*trains[index + 1:])
            kept.append(table[[key not in later for key in zip(table["dataset"], table["method"])]])
    return pd.concat(kept, ignore_index=True) if kept else None


def frontier_points(*results_dirs: Path | None) -> pd.DataFrame:
    """`as_points` of the runs of one or more profiles (a later one's methods replacing an earlier one's,
    `superseded`), with their fine-tuned sweeps where they have them (at the fine-tuning rate chosen on validation
    data, where several were tried)."""
    folders = [Path(d) for d in results_dirs if d is not None and finished_runs(d)]
    pruning = [load_table(folder, "pruning") for folder in folders]
    trains = [set(zip(table["dataset"], table["method"])) for table in pruning]
    finetuned = superseded([load_finetuned(folder) for folder in folders], trains)
    return as_points(superseded(pruning, trains), at_chosen_rate(finetuned))


def variant_anchor(variants: pd.Series) -> pd.Series:
    """The anchor ratio an anchor seed profile's variant names ('at12x' -> 12.0), NaN for any other variant."""
    return variants.str.extract(r"^at(\d+(?:\.\d+)?)x$", expand=False).astype(float)


def _standing(tables: list[pd.DataFrame | None], caps: list[pd.DataFrame]) -> pd.DataFrame | None:
    """One table of several profiles' runs (None where none has it), each profile's `targets.run_caps` beside it,
    each run as it stands: one trained again under a higher cap in place of its capped twin
    (`targets.under_highest_cap`)."""
    capped = [table.merge(cap, on=RUN_KEYS) for table, cap in zip(tables, caps) if table is not None]
    return under_highest_cap(pd.concat(capped, ignore_index=True)).drop(columns="cap") if capped else None


def anchored_points(*results_dirs: Path | None) -> pd.DataFrame:
    """`as_points` of the profiles that train each method at the point the anchor search chose for one anchor ratio
    (variants 'at12x', 'at68x', `report.anchor_search.anchor_variants`), that ratio in `anchor`, each variant's
    fine-tuning rate chosen on validation data by itself (`rate_choice`), a run trained again under a higher cap in
    place of its capped twin; empty where none has run."""
    folders = [Path(d) for d in results_dirs if d is not None and finished_runs(d)]
    if not folders:
        return pd.DataFrame(columns=[*SERIES, "seed", "variant", "anchor"])
    caps = [run_caps(folder) for folder in folders]
    pruning = _standing([load_table(folder, "pruning") for folder in folders], caps)
    finetuned = _standing([load_finetuned(folder) for folder in folders], caps)
    points = as_points(pruning, at_chosen_rate(finetuned))
    points["anchor"] = variant_anchor(points["variant"])
    return points[points["anchor"].notna()]


def for_anchor(points: pd.DataFrame, anchored: pd.DataFrame | None, ratio: float) -> pd.DataFrame:
    """The points a verdict at `ratio` reads: each method's runs at the point chosen for that ratio
    (`anchored_points`), where they have run on a dataset `points` holds, in place of the frontier's."""
    if anchored is None or anchored.empty:
        return points
    chosen = anchored[(anchored["anchor"] == ratio) & anchored["dataset"].isin(points["dataset"].unique())]
    replaced = set(zip(chosen["dataset"], chosen["method"]))
    kept = points[[key not in replaced for key in zip(points["dataset"], points["method"])]]
    return pd.concat([kept, chosen.drop(columns="anchor")], ignore_index=True)


def capped_reading(results_dir: Path, anchored: pd.DataFrame) -> str:
    """The methods of a frontier whose runs its cap stopped before their own rule could, in a sentence: on how many
    seeds, the epochs their rule kept, and whether the verdicts read other runs of theirs (each method at its point
    chosen per anchor ratio, `anchored_points`, at every ratio); '' where the cap stopped none."""
    runs = run_epochs(results_dir)
    capped = runs[runs["trained"] >= runs["cap"]]
    if capped.empty:
        return ""
    parts = []
    for method in method_order(capped["method"]):
        mine, all_seeds = capped[capped["method"] == method], runs[runs["method"] == method]
        seeds = "every seed" if len(mine) == len(all_seeds) else f"{len(mine)} of its {len(all_seeds)} seeds"
        kept = span(mine["epoch kept"], " to ")
        parts.append(f"{method_label(method)} on {seeds} (its rule kept epoch{'s' if isinstance(kept, str) else ''} "
                     f"{kept})")
    ratios = anchored["anchor"].nunique()
    judged = {method for method, seen in anchored[anchored["dataset"].isin(capped["dataset"])]
              .groupby("method")["anchor"].nunique().items() if ratios and seen == ratios}
    elsewhere = set(capped["method"]) <= judged
    return (f"The cap of {span(capped['cap'], ' to ')} epochs ended {joined(parts)} before their own rule could. "
            + ("These runs draw only the curves: the verdicts at 12x and 68x read each of these methods at the point "
               "chosen for that ratio, on runs of their own." if elsewhere else
               "The verdicts read these runs as they are, at the cap."))


def anchor_source(anchored: pd.DataFrame, dataset: str = "mnist") -> str:
    """Which point each method is judged at on one dataset, in a sentence: the one chosen for each anchor ratio where
    `anchored_points` has runs (with their seeds), else the frontier's own, chosen for 90 % pruned."""
    label, at = DATASET_LABELS.get(dataset, dataset), anchored[anchored["dataset"] == dataset]
    if at.empty:
        return (f"On {label}, each method is judged at the point its frontier search chose for 90 % pruned: the points "
                "chosen at 12x and 68x themselves (in the frontier details) have not yet been trained on further seeds.")
    methods = [method_label(m) for m in method_order(at["method"])]
    seeds = at.groupby(["method", "anchor"])["seed"].nunique()
    count = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()} to {seeds.max()}"
    verb = "is" if len(methods) == 1 else "are each"
    return (f"On {label}, {joined(methods)} {verb} judged at the point chosen for each ratio on validation data (in "
            f"the frontier details), {count} seeds each; every other method at the frontier's own point, which its "
            "anchor search chose too or which was not searched.")


def structured_points(results_dir: Path, architecture: str = "784-300-100-10") -> pd.DataFrame:
    """`as_points` of a profile's BC-GNJ runs on one network (pruned once, no fine-tuning): whole units by log alpha,
    single weights by magnitude and the network as trained; empty where none has run."""
    if not has_bcgnj(results_dir):
        return pd.DataFrame()
    pruning = load_table(results_dir, "pruning")
    pruning = pruning[pruning["method"] == "bcgnj"]
    variants = [variant for variant, dense in dense_architectures(pruning).items() if dense == architecture]
    return as_points(pruning[pruning["variant"].isin(variants)])


def frontier_summary(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of test error and compression ratio per method, criterion, schedule and fraction
    (each as-trained network, sparse VD's or BC-GNJ's, as one point at its mean fraction)."""
    points = points.copy()
    threshold = points["criterion"].isin(list(AS_TRAINED))
    points.loc[threshold, "fraction"] = points[threshold].groupby(SERIES)["fraction"].transform("mean").round(6)
    grouped = points.groupby([*SERIES, "fraction"])
    summary = grouped.agg(error=("error", "mean"), error_sd=("error", "std"), compression=("compression", "mean"),
                          seeds=("seed", "nunique"), nonzero=("nonzero", "mean"))
    return summary.reset_index()


def pareto_front(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary's points that no other point beats on both axes (higher compression, lower error)."""
    ordered = summary.sort_values(["compression", "error"], ascending=[False, True])
    best, keep = np.inf, []
    for index, error in zip(ordered.index, ordered["error"]):
        if error < best:
            keep.append(index)
            best = error
    return summary.loc[keep].sort_values("compression")


def dense_errors(summary: pd.DataFrame) -> pd.Series:
    """Each dataset's and method's dense test error (%): its own criterion at fraction 0, pruned once."""
    dense = _own(summary)
    dense = dense[(dense["schedule"] == "none") & (dense["fraction"] == 0.0) & ~dense["criterion"].isin(list(AS_TRAINED))]
    return dense.set_index(["dataset", "method"])["error"]


def best_ratios(summary: pd.DataFrame, tolerances: tuple[float, ...] = TOLERANCES) -> pd.DataFrame:
    """Per dataset, method and schedule (own criterion): the highest mean compression ratio whose mean test error
    stays within each tolerance of the method's dense error, and the error there."""
    dense = dense_errors(summary)
    rows = []
    for (dataset, method, schedule), series in _own(summary).groupby(["dataset", "method", "schedule"], sort=False):
        reference = dense[(dataset, method)]
        row = {"dataset": dataset, "method": method_label(method), "schedule": SCHEDULE_LABELS[schedule],
               "dense error %": reference}
        for tolerance in tolerances:
            within = series[series["error"] <= reference + tolerance]
            best = within.loc[within["compression"].idxmax()] if len(within) else None
            row[f"ratio within {tolerance:g}"] = best["compression"] if best is not None else np.nan
            row[f"error there, {tolerance:g}"] = best["error"] if best is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "method", "schedule"])


WEIGHTS_RATIO = "weights / nonzero weights"  # Molchanov et al.'s compression ratio: the weights alone, biases aside


def threshold_point(points: pd.DataFrame) -> pd.DataFrame:
    """Sparse VD as trained (weights above log alpha = 3 removed): test error, compression ratio (all parameters,
    the frontier's count), weights over nonzero weights (Molchanov et al.'s count, biases aside) and, where the runs
    record it, each weight matrix's share removed (%), per seed, with mean and sd, beside Molchanov et al.'s."""
    layers = sorted((c for c in points if c.startswith("removed_layer") and points[c].notna().any()),
                    key=lambda c: int(c.removeprefix("removed_layer")))
    rows = points[points["criterion"] == THRESHOLD_CRITERION].set_index("seed")[["error", "compression", "fraction", *layers]]
    rows.insert(2, WEIGHTS_RATIO, 1 / (1 - rows["fraction"]))
    rows = rows.rename(columns={"fraction": "removed %", **{c: f"layer {c.removeprefix('removed_layer')} removed %"
                                                            for c in layers}})
    rows[rows.columns[3:]] = 100 * rows[rows.columns[3:]]
    summary = rows.agg(["mean", "std"])
    molchanov = next(anchor for anchor in LENET_ANCHORS if anchor[0].startswith("Sparse VD"))
    published = {"error": molchanov[1], "compression": float("nan"), WEIGHTS_RATIO: molchanov[2],
                 "removed %": 100 * (1 - 1 / molchanov[2]), **dict(zip(rows.columns[4:], SPARSE_VD_LAYER_SPARSITY))}
    published = pd.DataFrame([published], index=["Molchanov et al. 2017"])
    return pd.concat([rows.rename(index=lambda s: f"seed {s}"), summary, published])


def anchors() -> pd.DataFrame:
    """The published points: LeNet-300-100's, and Blundell et al.'s Table 2 on 2 x 1200 units for scale."""
    table = pd.DataFrame([*LENET_ANCHORS, BLUNDELL_COMPRESSION], columns=["published", "error", "compression"])
    return table.set_index("published")


def against_anchors(summary: pd.DataFrame) -> pd.DataFrame:
    """Where our Pareto front stands against each published LeNet-300-100 point: our lowest mean error at that
    compression ratio or higher, and our highest ratio at that error or lower, with the series that reach them."""
    front = pareto_front(summary)
    rows = []
    for label, error, ratio in LENET_ANCHORS:
        at_ratio = front[front["compression"] >= ratio]
        at_error = front[front["error"] <= error]
        first = at_ratio.iloc[0] if len(at_ratio) else None
        last = at_error.iloc[-1] if len(at_error) else None
        rows.append({"published": label, "error %": error, "ratio": ratio,
                     "our error at this ratio": first["error"] if first is not None else np.nan,
                     "by": _series_label(first) if first is not None else "",
                     "our ratio at this error": last["compression"] if last is not None else np.nan,
                     "by ": _series_label(last) if last is not None else ""})
    return pd.DataFrame(rows).set_index("published")


def _series_label(row: pd.Series) -> str:
    """'BBB, pruned once, then fine-tuned' for one point of the summary."""
    return f"{method_label(row['method'])}, {SCHEDULE_LABELS[row['schedule']]}"


BAYESIAN_LABELS = ("BBB", "Sparse VD", "BC-GNJ")  # every other method was trained without a posterior


def chosen_schedules(points: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(dataset, method) -> the fine-tuning schedule ('one-shot' or 'iterative') with the higher validation accuracy
    averaged over its fractions and seeds; empty where the fine-tuned rows record no validation accuracy."""
    tuned = points[points["schedule"] != "none"]
    if "val_accuracy" not in tuned or tuned["val_accuracy"].isna().all():
        return {}
    means = tuned.groupby(["dataset", "method", "schedule"])["val_accuracy"].mean()
    chosen = means.groupby(level=["dataset", "method"]).idxmax()
    return {(dataset, method): key[2] for (dataset, method), key in chosen.items()}


ANCHOR_RATIOS = (12.0, 68.0)  # Han et al.'s pruning with retraining and Molchanov et al.'s Sparse VD on LeNet-300-100
ANCHOR_SCHEDULE = "one-shot"  # the schedule the anchor search chooses on: every method judged at an anchor after it


def errors_at_ratio(points: pd.DataFrame, ratio: float, default: str = "none", schedule: str | None = None
                    ) -> pd.DataFrame:
    """Per dataset, method label and seed (own criterion, the threshold network aside): the test error at the first
    achieved compression ratio at or above `ratio` and that ratio, at `schedule` for every method that has it, or,
    without one, at the fine-tuning schedule chosen on validation accuracy (`default` where a method has neither);
    NaN where a seed never reaches `ratio`."""
    own = _own(points)
    own = own[~own["criterion"].isin(list(AS_TRAINED))]
    schedules = {} if schedule else chosen_schedules(points)
    rows = {}
    for (dataset, method, seed), run in own.groupby(["dataset", "method", "seed"], sort=False):
        held = schedule if schedule in set(run["schedule"]) else schedules.get((dataset, method), default)
        reached = run[(run["schedule"] == held) & (run["compression"] >= ratio)]
        first = reached.loc[reached["compression"].idxmin()] if len(reached) else None
        rows[(dataset, method_label(method), seed)] = {"error": first["error"] if first is not None else np.nan,
                                                       "compression": first["compression"] if first is not None
                                                       else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["dataset", "method", "seed"])


def errors_at_anchor(points: pd.DataFrame, ratio: float, anchored: pd.DataFrame | None = None) -> pd.DataFrame:
    """`errors_at_ratio` as every anchor verdict reads it, on one dataset: per method label and seed, each method at
    its point chosen for the ratio where `anchored` has it (`for_anchor`), fine-tuned after pruning once where it was
    fine-tuned (`ANCHOR_SCHEDULE`)."""
    return errors_at_ratio(for_anchor(points, anchored, ratio), ratio, schedule=ANCHOR_SCHEDULE).droplevel("dataset")


def anchor_errors(points: pd.DataFrame, ratios: tuple[float, ...] = ANCHOR_RATIOS,
                  anchored: pd.DataFrame | None = None) -> pd.DataFrame:
    """`errors_at_anchor` as a table: per anchor ratio and method, each seed's test error (%), the mean and the
    ratios achieved, the methods in the study's order."""
    methods = points["method"] if anchored is None else pd.concat([points["method"], anchored["method"]])
    tables = []
    for ratio in ratios:
        at = errors_at_anchor(points, ratio, anchored)
        table = at["error"].unstack("seed").rename(columns=lambda seed: f"seed {seed}")
        table["mean"] = at["error"].groupby(level="method", sort=False).mean()
        table["ratio achieved"] = at["compression"].groupby(level="method", sort=False).mean()
        order = [label for label in map(method_label, method_order(methods)) if label in table.index]
        tables.append(table.reindex(order).assign(anchor=f"{ratio:.0f}x").set_index("anchor", append=True).swaplevel())
    return pd.concat(tables)


def at_same_ratio(points: pd.DataFrame, ratio: float, anchored: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """BBB against every method without a posterior at `ratio` (`errors_at_anchor`, one dataset): the ratios achieved, each method's mean error, BBB's error minus each one's over
    seeds (a 95 % Welch interval), the verdict of BBB below all of them (no rival picked on test images: each pair is
    judged), and for display the closest of them by mean; None where BBB or every such method never reaches the ratio."""
    at = errors_at_anchor(points, ratio, anchored)
    means = at["error"].groupby(level="method", sort=False).mean()
    others = means[[m not in BAYESIAN_LABELS for m in means.index]].dropna()
    if "BBB" not in means or pd.isna(means["BBB"]) or not len(others):
        return None
    bbb = at.loc["BBB", "error"].dropna()
    gaps = {m: difference(bbb, at.loc[m, "error"].dropna()) for m in others.index}
    rival = others.idxmin()
    low, high = (f"{at['compression'].agg(end):.0f}x" for end in ("min", "max"))
    return {"achieved": low if low == high else f"{low} to {high}", "means": means, "others": others.sort_values(),
            "rival": rival, "gap": gaps[rival], "gaps": gaps,
            "verdict": combine([gap.below(0.0) for gap in gaps.values()])}


def anchor_reads(points: pd.DataFrame, ratios: tuple[float, ...] = ANCHOR_RATIOS,
                 anchored: pd.DataFrame | None = None) -> dict[float, dict[str, Any]]:
    """`at_same_ratio` on one dataset at each anchor ratio that BBB and a method without a posterior both reach."""
    reads = {ratio: at_same_ratio(points, ratio, anchored) for ratio in ratios}
    return {ratio: read for ratio, read in reads.items() if read is not None}


def reads_verdict(reads: dict[float, dict[str, Any]]) -> str:
    """One dataset's verdict from its `anchor_reads`: every ratio either method reaches must hold."""
    return combine([read["verdict"] for read in reads.values()]) if reads else "not tested"


def same_ratio_phrases(reads: dict[float, dict[str, Any]]) -> list[str]:
    """Per anchor ratio read (`anchor_reads`), in words: 'at 12x, BBB's test error is 1.72 % against 1.86 % for
    SGD + L2 and 1.80 % for Sparse VD'."""
    phrases = []
    for ratio, read in reads.items():
        means, sparse_vd = read["means"], read["means"].get("Sparse VD", np.nan)
        phrases.append(f"at {ratio:.0f}x, BBB's test error is {means['BBB']:.2f} % against "
                       f"{means[read['rival']]:.2f} % for {read['rival']}"
                       + (f" and {sparse_vd:.2f} % for Sparse VD" if pd.notna(sparse_vd) else ""))
    return phrases


def compression_verdict(points: pd.DataFrame, ratios: tuple[float, ...] = ANCHOR_RATIOS,
                        anchored: pd.DataFrame | None = None) -> tuple[str, str]:
    """Whether BBB has a lower test error than every method trained without a posterior at the same compression,
    on every dataset; (our numbers, verdict). Judged at the published anchors' ratios (`at_same_ratio`): at each,
    BBB's error minus the best such method's below 0 holds, above it fails, an interval straddling it is
    inconclusive; every ratio either method reaches must hold."""
    lines, verdicts = [], []
    for dataset in points["dataset"].unique():
        reads = anchor_reads(points[points["dataset"] == dataset], ratios, anchored)
        if not reads:
            continue
        parts = []
        for ratio, read in reads.items():
            means, gap, rival = read["means"], read["gap"], read["rival"]
            sparse_vd = means.get("Sparse VD", np.nan)
            parts.append(f"at {ratio:.0f}x (achieved: {read['achieved']}) BBB {means['BBB']:.2f} %, the best method "
                         f"without a posterior {rival} {means[rival]:.2f} %"
                         + (f" (Sparse VD {sparse_vd:.2f} %)" if pd.notna(sparse_vd) else "")
                         + f"; BBB minus {rival} {gap.text(2)} points")
        verdicts.append(reads_verdict(reads))
        lines.append(f"{dataset}: " + "; ".join(parts))
    if not verdicts:
        return "BBB and a non-Bayesian method were not both pruned that far", "not tested"
    how = ("pruned once, then fine-tuned, the schedule each method's point is chosen on; pruned once without "
           "fine-tuning where a method was never fine-tuned" if (points["schedule"] == ANCHOR_SCHEDULE).any()
           else "pruned once, no fine-tuning")
    ours = (f"mean test error over seeds at the first achieved ratio at or above each published anchor's ({how}): "
            + "; ".join(lines))
    return ours, verdicts[0] if len(set(verdicts)) == 1 else "mixed: " + ", ".join(verdicts)


def training_check(results_dir: Path) -> pd.DataFrame:
    """Did each model train before it was pruned: per method, mean over seeds of the epochs trained, the epoch
    kept, the best validation accuracy and the dense test error; for BBB the share of sigmas that left a factor-2
    band around their initial value and the median sigma at the end; for sparse VD the share of weights above
    log alpha = 3."""
    history = load_table(results_dir, "history").sort_values("epoch")
    last = history.groupby(["dataset", "method", "seed"]).last()
    runs = history.groupby(["dataset", "method", "seed"]).agg(epochs=("epoch", "max"), best_val_acc=("val_acc", "max"))
    runs.insert(1, "epoch kept", kept_epochs(results_dir, history).droplevel(["protocol", "variant"]))
    runs["sigma moved"] = last["sigma_moved"] if "sigma_moved" in last else np.nan
    runs["median sigma"] = last["sigma_q50"] if "sigma_q50" in last else np.nan
    runs["above log alpha = 3"] = last["sparsity"] if "sparsity" in last else np.nan
    dense = dense_errors(frontier_summary(frontier_points(results_dir))).rename("dense test error %")
    table = runs.groupby(level=["dataset", "method"]).mean().join(dense)
    table["seeds"] = runs.groupby(level=["dataset", "method"]).size()
    return table.rename(index=method_label, level="method")


def training_recipes(results_dir: Path) -> pd.DataFrame:
    """How each model of a profile was trained and fine-tuned, as its runs record it (one row per method; a field
    that differs between its runs lists each value): the Adam rate, the log scale of a penalty's prior, the score
    that picks the kept epoch, the patience and the most epochs, the epochs trained (mean over seeds, whole epochs), and the
    fine-tuning budget in words (`_finetuning_text`)."""
    rows = []
    for manifest in load_manifests(results_dir):
        cfg = RunConfig.from_dict(manifest["config"])
        tuning = json.loads((Path(results_dir) / "runs" / manifest["run"] / "prune.json").read_text())
        rows.append({"method": cfg.method, "Adam rate": rate_text(cfg.lr),
                     "log prior scale": cfg.prior_log_sigma1 if cfg.penalty in ("l1", "l2") else "—",
                     "epoch kept by": RULES[cfg.select] if cfg.patience else "the last epoch",
                     "patience": cfg.patience or "—", "epochs at most": cfg.epochs,
                     "fine-tuning": _finetuning_text(tuning)})
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows).astype(str)
    table = frame.groupby("method").agg(lambda values: ", ".join(dict.fromkeys(values)))
    history = load_table(results_dir, "history")
    table["epochs trained"] = history.groupby(RUN_KEYS)["epoch"].max().groupby(level="method").mean().round().astype(int)
    order = {m: i for i, m in enumerate(method_order(table.index))}
    return table.sort_index(key=lambda index: index.map(order)).rename(index=method_label)


def _finetuning_text(tuning: dict) -> str:
    """A run's fine-tuning budget: 'at most 10 epochs, patience 2, at 1 and 0.1 x the training rate', or 'none'."""
    if not tuning.get("finetune_epochs"):
        return "none"
    rates = " and ".join(f"{r:g}" for r in tuning.get("finetune_rates", [1.0]))
    patience = f", patience {tuning['finetune_patience']}" if tuning.get("finetune_patience") else ""
    return f"at most {tuning['finetune_epochs']} epochs{patience}, at {rates} x the training rate"


def search_choice(search_dir: Path, *edge_dirs: Path) -> pd.DataFrame:
    """The frontier-search's points, with those of any search past its edges, and what each rule chose
    (`fairness.search_table`) where its runs record the pruned validation score, else the rate chosen on
    validation accuracy alone (`choose_learning_rates`)."""
    if "val_acc_pruned" in load_table(search_dir, "history"):
        return search_table(search_points(search_dir, *edge_dirs))
    return choose_learning_rates(search_dir)


def search_reading(points: pd.DataFrame, rule: str = "val_acc_pruned") -> str:
    """What a frontier-search chose by one rule, in words (Markdown, `fairness.search_points` of one dataset): per
    method an item with the point, whether it lies at an end of the values tried, and the epoch its score was best
    at of those trained."""
    phrases, dashed = [], with_dash(points)
    for method, row in choices(points).xs(RULES[rule], level="rule").iterrows():
        tried = points[points["method"] == method]
        at = tried[(tried["lr"] == row["lr"]) & (dashed.loc[tried.index, "prior scale"] == row["prior scale"])].iloc[0]
        searched, value = (("prior scale", row["prior scale"]) if row["prior scale"] != "—" else ("lr", row["lr"]))
        values = tried[tried["lr"] == row["lr"]][searched] if searched == "prior scale" else tried[searched]
        end = (" (the lowest value tried)" if value == values.min() else " (the highest value tried)"
               if value == values.max() else "")
        point = f"Adam {rate_text(row['lr'])}" + (f", prior scale e^{value:g}" if searched == "prior scale" else "")
        phrases.append(f"{method_label(method)} at {point}{end}: {row['validation']:.4f}, best at epoch "
                       f"{int(at[f'{rule} epoch'])} of {int(at['epochs'])}")
    return f"By the {RULES[rule]} rule:\n\n" + "\n".join(f"- {phrase}" for phrase in phrases)


def _seed_counts(points: pd.DataFrame) -> str:
    """'3 seeds per method', or '1 to 3 seeds per method' where they differ."""
    counts = points.groupby("method")["seed"].nunique()
    if counts.min() == counts.max():
        return f"{counts.min()} seed{'' if counts.min() == 1 else 's'} per method"
    return f"{counts.min()} to {counts.max()} seeds per method"


def _compression_phrases(points: pd.DataFrame, tolerance: float) -> list[str]:
    """Per method, its dense error and highest compression ratio within `tolerance` points of it, pruned once and
    (where it was fine-tuned) at its best fine-tuned schedule: 'BBB (1.93 % dense) 19x pruned once, 61x fine-tuned'."""
    table = best_ratios(frontier_summary(points), (tolerance,)).droplevel("dataset")
    ratio = f"ratio within {tolerance:g}"
    phrases = []
    for method, rows in table.groupby(level="method", sort=False):
        rows = rows.droplevel("method")
        once = rows.loc[SCHEDULE_LABELS["none"], ratio] if SCHEDULE_LABELS["none"] in rows.index else np.nan
        tuned = rows.drop(SCHEDULE_LABELS["none"], errors="ignore")[ratio]
        phrases.append(f"{method} ({rows['dense error %'].iloc[0]:.2f} % dense) {once:.0f}x pruned once"
                       + (f", {tuned.max():.0f}x fine-tuned" if len(tuned) else ""))
    return phrases


def _as_trained(points: pd.DataFrame) -> str:
    """Sparse VD as trained in words: the share it removes, its ratio and its error (mean over seeds)."""
    threshold = points[points["criterion"] == THRESHOLD_CRITERION]
    return (f"Sparse VD as trained removes {100 * threshold['fraction'].mean():.1f} % of the weights "
            f"({threshold['compression'].mean():.0f}x) at {threshold['error'].mean():.2f} % error")


def frontier_reading(points: pd.DataFrame, tolerance: float = 0.5, dataset: str = "mnist",
                     anchored: pd.DataFrame | None = None) -> str:
    """The frontier on one dataset in words (Markdown): per method its dense error and highest compression ratio within
    `tolerance` points of it, pruned once without fine-tuning and at its best fine-tuned schedule; on MNIST Sparse
    VD as trained beside Molchanov et al.'s; and the verdict on BBB against the non-Bayesian methods."""
    points = points[points["dataset"] == dataset]
    where = (f"LeNet-300-100 ({_seed_counts(points)})" if dataset == "mnist"
             else f"{DATASET_LABELS.get(dataset, dataset)} (LeNet-300-100, {_seed_counts(points)})")
    text = (f"On {where}, the highest compression ratio within {tolerance:g} points of each method's own dense "
            f"test error:\n\n" + "\n".join(f"- {phrase}" for phrase in _compression_phrases(points, tolerance)))
    if dataset == "mnist" and (points["criterion"] == THRESHOLD_CRITERION).any():
        molchanov = next(anchor for anchor in LENET_ANCHORS if anchor[0].startswith("Sparse VD"))
        text += f"\n\n{_as_trained(points)}, against Molchanov et al.'s {molchanov[2]:.0f}x at {molchanov[1]:.2f} %."
    reads = anchor_reads(points, anchored=anchored)
    if reads:
        text += "\n\nAt the same compression:\n\n" + "\n".join(f"- {phrase}" for phrase in same_ratio_phrases(reads))
    return text + f"\n\nDoes BBB compress better than every method without a posterior? {reads_verdict(reads)}."


def han_comparison(points: pd.DataFrame, method: str = "sgd-l2", ratio: float = 12.0) -> str:
    """Han et al.'s magnitude baseline against ours, in words: per seed our dense error and our error at the
    first achieved ratio at or above `ratio` (MNIST, the fine-tuning schedule chosen on validation accuracy, else
    step by step), each with its 95 % t-interval over seeds, beside their 1.64 % dense and 1.59 % at 12x, and
    whether their pruned error lies inside, below or above our interval; a paragraph each."""
    (_, han_dense, _), (_, han_error, han_ratio) = LENET_ANCHORS[0], LENET_ANCHORS[1]
    label = method_label(method)
    ours_points = points[(points["dataset"] == "mnist") & (points["method"] == method)]
    rows = _own(ours_points)
    if rows.empty:
        return f"{label} is not on the frontier, so Han et al.'s point has no counterpart here."
    schedule = chosen_schedules(ours_points).get(("mnist", method), "iterative")
    dense = rows[(rows["schedule"] == "none") & (rows["fraction"] == 0.0)].set_index("seed")["error"]
    first = errors_at_ratio(ours_points, ratio, default="iterative").loc[("mnist", label)].dropna()
    ours_dense, ours = interval(dense.to_numpy()), interval(first["error"].to_numpy())
    where = ("inside" if ours.low <= han_error <= ours.high else "below" if han_error < ours.low else "above")
    return (f"Han et al.'s magnitude baseline: {han_dense:.2f} % dense, {han_error:.2f} % at {han_ratio:.0f}x after "
            f"pruning and retraining.\n\nOurs ({label}, {SCHEDULE_LABELS[schedule]}): {ours_dense.text(2)} % dense "
            f"and {ours.text(2)} % at {first['compression'].mean():.0f}x, the first of our ratios at or above "
            f"{ratio:.0f}x; their {han_error:.2f} % lies {where} our interval.\n\nRetraining moves our error by "
            f"{ours.mean - ours_dense.mean:+.2f} points from dense, theirs by {han_error - han_dense:+.2f}.")


def schedule_reading(points: pd.DataFrame) -> str:
    """Sparse VD as trained on its authors' schedule, in words (Markdown paragraphs): its share removed, ratio and
    error over seeds against Molchanov et al.'s, and layer by layer where the runs record it."""
    table = threshold_point(points)
    ours, published = table.loc["mean"], table.loc["Molchanov et al. 2017"]
    sd = table.loc["std"]
    seeds = sum(index.startswith("seed ") for index in table.index)
    text = (f"On its authors' schedule ({seeds} seed{'s' if seeds > 1 else ''}), Sparse VD as trained removes "
            f"{ours['removed %']:.1f} % of the weights at {ours['error']:.2f} ± {sd['error']:.2f} % test error, against "
            f"their {published['error']:.2f} %.\n\nIts compression is {ours[WEIGHTS_RATIO]:.0f}x ± "
            f"{sd[WEIGHTS_RATIO]:.0f} by Molchanov et al.'s count (weights over nonzero weights), against their "
            f"{published[WEIGHTS_RATIO]:.0f}x; over all parameters, the frontier's count, it is "
            f"{ours['compression']:.0f}x ± {sd['compression']:.0f}.")
    layers = [c for c in table.columns if c.startswith("layer ")]
    if layers:
        text += ("\n\nBy layer it removes " + ", ".join(f"{ours[c]:.1f}" for c in layers) + " % against their "
                 + ", ".join(f"{published[c]:.1f}" for c in layers) + " %.")
    return text


STUDY_NETWORK_RULES = {"as-trained": "as trained", "pruned90": "pruned 90 %"}  # the converged profile's variants


def study_network_points(converged_dir: Path, study_dir: Path, variant: str = "as-trained") -> pd.DataFrame:
    """The study's network (784-500-500-10) on MNIST, pruned once without fine-tuning: the converged profile's
    baselines and BBB kept by one selection rule (its variant, `STUDY_NETWORK_RULES`; never two averaged together)
    beside sparse VD's runs, as `as_points`."""
    if variant not in STUDY_NETWORK_RULES:
        raise ValueError(f"unknown rule {variant!r}; valid choices: {', '.join(STUDY_NETWORK_RULES)}")
    pruning = [load_table(folder, "pruning") for folder in (converged_dir, study_dir) if finished_runs(folder)]
    pruning = pd.concat(pruning, ignore_index=True)
    points = as_points(pruning[pruning["variant"].isin([variant, ""])])
    return points[points["dataset"] == "mnist"]


def error_by_fraction(points: pd.DataFrame) -> pd.DataFrame:
    """Mean test error (%) of each method by its own criterion, pruned once: a row per method, a column per
    fraction of weights removed."""
    own = _own(points)
    own = own[(own["schedule"] == "none") & ~own["criterion"].isin(list(AS_TRAINED))]
    table = own.pivot_table(index="method", columns="fraction", values="error", aggfunc="mean")
    table = table.loc[method_order(table.index)].rename(index=method_label)
    table.columns = [fraction_label(f) for f in table.columns]
    return table.rename_axis(index="method", columns="test error (%), pruned")


def study_network_reading(points: pd.DataFrame, tolerance: float = 0.5, rule: str = "as trained") -> str:
    """Sparse VD against BBB and the baselines (kept by one rule) on the study's network, in words (Markdown)."""
    text = (f"On the study's network (784-500-500-10, MNIST; {_seed_counts(points)}; the other networks kept "
            f"{rule}), pruned once without fine-tuning, the highest compression ratio within {tolerance:g} points of each method's own dense "
            f"test error:\n\n" + "\n".join(f"- {phrase}" for phrase in _compression_phrases(points, tolerance)))
    if (points["criterion"] == THRESHOLD_CRITERION).any():
        text += f"\n\n{_as_trained(points)}."
    return text


def sparsity_by_epoch(results_dir: Path, every: int = 10) -> pd.DataFrame:
    """Sparse VD's share of weights above log alpha = 3 at every `every`-th epoch, one column per seed."""
    history = load_table(results_dir, "history")
    history = history[(history["method"] == "sparsevd") & (history["epoch"] % every == 0)]
    return history.pivot_table(index="epoch", columns="seed", values="sparsity").add_prefix("seed ")



def highest_anchor(points: pd.DataFrame, dataset: str, anchored: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """`at_same_ratio` on one dataset at the highest published anchor ratio BBB and a method without a posterior
    both reach, with that ratio and the verdict of BBB's error below the rival's; None where they reach none."""
    ours = points[points["dataset"] == dataset]
    for ratio in sorted(ANCHOR_RATIOS, reverse=True):
        read = at_same_ratio(ours, ratio, anchored)
        if read is not None:
            return {**read, "ratio": ratio}
    return None


def frontier_answer(points: pd.DataFrame, anchored: pd.DataFrame | None = None) -> str:
    """The chapter's answer in a sentence per dataset: BBB against the best method without a posterior at the
    highest published anchor ratio both reach, with the verdict of the gap over seeds."""
    sentences = []
    for dataset in mnist_first(points["dataset"]):
        read = highest_anchor(points, dataset, anchored)
        if read is not None:
            means, rival, verdict = read["means"], read["rival"], read["verdict"]
            how = {"holds": "lower", "does not hold": "not lower"}.get(verdict, "not clearly lower")
            sentences.append(f"On {DATASET_LABELS.get(dataset, dataset)} at {read['ratio']:.0f}x, BBB's test error "
                             f"is {means['BBB']:.2f} % against {means[rival]:.2f} % for {rival}, the best method "
                             f"without a posterior: {how} over seeds ({verdict}).")
    return " ".join(sentences) or "BBB and a method without a posterior were not both pruned to a published ratio."
