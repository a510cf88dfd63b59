"""Summaries of the tidy tables in the study's layout, our numbers beside its reported ones."""

from __future__ import annotations

import pandas as pd

from bayesprune.config import DEVIATIONS
from bayesprune.compress.prune import own_criteria
from bayesprune.report.formatting import DATASET_LABELS, MISSING, mean_sd
from bayesprune.report.reference import FRACTIONS, METHOD_LABELS, REPORTED, method_label

MAIN_PROTOCOLS = ("corrected", "study")
WITHOUT = "study without "  # label prefix of a run with one training-time deviation fixed


def main_protocols(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the `corrected` and `study` runs, without the ablation's one-switch variants."""
    return frame[frame["protocol"].isin(MAIN_PROTOCOLS)]


def method_order(methods) -> list[str]:
    """Methods in the study's row order, unknown ones last."""
    known = [m for m in METHOD_LABELS if m in set(methods)]
    return known + sorted(set(methods) - set(known))


# Who a comparison figure shows first: BBB and the MAP estimate under its own prior, then the prior-trained point
# estimates, then the study's plain baselines
COMPARED_FIRST = ("bbb", "sgd-mixture", "sgd-l1", "sgd-l2", "sgd", "dropout0.5")


def compared_methods(methods, limit: int = 6) -> list[str]:
    """At most `limit` methods for one figure panel, in the study's order: BBB and its prior-matched MAP estimate
    always, then the prior-trained baselines and the plain ones (`COMPARED_FIRST`), the rest until it is full."""
    ordered = method_order(methods)
    ranked = [m for m in COMPARED_FIRST if m in ordered] + [m for m in ordered if m not in COMPARED_FIRST]
    kept = set(ranked[:limit])
    return [m for m in ordered if m in kept]


def primary_rows(pruning: pd.DataFrame) -> pd.DataFrame:
    """Rows of each method's own criterion (SNR for BBB, magnitude otherwise)."""
    own = [c in own_criteria(m) for m, c in zip(pruning["method"], pruning["criterion"])]
    return pruning[own]


def summarise(pruning: pd.DataFrame, column: str = "accuracy_mean") -> pd.DataFrame:
    """Mean, std and number of seeds of an accuracy column per dataset, method, criterion, fraction."""
    groups = pruning.groupby(["dataset", "protocol", "method", "criterion", "fraction"])[column]
    return groups.agg(mean="mean", std="std", seeds="count").reset_index()


def study_layout(pruning: pd.DataFrame, dataset: str, protocol: str, column: str = "accuracy_mean") -> pd.DataFrame:
    """The study's Table 1/2 as one row per method and fraction pruned: ours (mean +- std over seeds), the
    study's number and ours - study's; narrow enough for a phone."""
    rows = summarise(primary_rows(pruning), column)
    rows = rows[(rows["dataset"] == dataset) & (rows["protocol"] == protocol)]
    table = {}
    for method in method_order(rows["method"].unique()):
        for fraction in FRACTIONS:
            hit = rows[(rows["method"] == method) & (rows["fraction"].round(6) == fraction)]
            if hit.empty:
                continue
            mean, std, seeds = hit.iloc[0][["mean", "std", "seeds"]]
            reported = REPORTED.get(dataset, {}).get(method)
            study = reported[FRACTIONS.index(fraction)] if reported else None  # a method the study did not train
            table[(method_label(method), f"{fraction:.0%}")] = {
                "ours": mean_sd(mean, std, seeds, digits=4),
                "study": MISSING if study is None else f"{study:.4f}",
                "ours − study": MISSING if study is None else f"{mean - study:+.4f}"}
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["model", "pruned"])
    return frame


def bbb_predictions(pruning: pd.DataFrame) -> pd.DataFrame:
    """BBB's accuracy from its posterior mean and from the Monte Carlo ensemble, per dataset, protocol, criterion
    and fraction (mean over seeds): each protocol's own networks, never averaged together."""
    bbb = pruning[pruning["method"] == "bbb"]
    return bbb.pivot_table(index=["dataset", "protocol", "criterion", "fraction"],
                           values=["accuracy_mean", "accuracy_ensemble"]).rename(
        columns={"accuracy_mean": "posterior mean", "accuracy_ensemble": "ensemble"})[["posterior mean", "ensemble"]]


def all_layers(weights: pd.DataFrame, parameter: str = "weight") -> pd.DataFrame:
    """Each run's whole-network rows of the weight table for one parameter (weight or sigma)."""
    return weights[(weights["layer"].astype(str) == "all") & (weights["parameter"] == parameter)]


def weight_summary(weights: pd.DataFrame) -> pd.DataFrame:
    """Std, kurtosis and near-zero share of all weights, mean over seeds, per dataset and method."""
    summary = all_layers(weights).groupby(["dataset", "protocol", "method"])[["std", "kurtosis", "near_zero_share"]].mean()
    return summary.reset_index()


def sigma_summary(weights: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of BBB's posterior sigmas (all layers), mean over seeds, per dataset and protocol."""
    return all_layers(weights, "sigma").groupby(["dataset", "protocol", "method"])[["mean", "std"]].mean().reset_index()


def defect_ablation(pruning: pd.DataFrame, ablation: pd.DataFrame, fraction: float = 0.9) -> pd.DataFrame:
    """Accuracy at one pruned fraction under `study`, with each deviation fixed alone, and under `corrected`."""
    at = primary_rows(pruning)
    at = at[at["fraction"].round(6) == fraction]
    pruned = ablation[(ablation["fraction"].round(6) == fraction) & (ablation["protocol"] == "study")]
    parts = [
        at[at["protocol"] == "study"].assign(fixed="nothing (study)"),
        pruned[pruned["fixed"] != "none"],
        at[at["protocol"].str.startswith(WITHOUT)].assign(fixed=lambda f: f["protocol"].str[len(WITHOUT):]),
        at[at["protocol"] == "corrected"].assign(fixed="everything (corrected)"),
    ]
    rows = pd.concat(parts, ignore_index=True)
    ablated = rows[rows["fixed"] != "nothing (study)"].groupby(["dataset", "method"])["fixed"].nunique()
    rows = rows.set_index(["dataset", "method"]).loc[ablated[ablated > 1].index].reset_index()
    order = ["nothing (study)", *DEVIATIONS, "everything (corrected)"]
    rows["order"] = rows["fixed"].map(order.index)
    table = rows.groupby(["dataset", "method", "order", "fixed"])[["accuracy_mean", "accuracy_ensemble"]].mean()
    study = table.groupby(level=["dataset", "method"])["accuracy_mean"].transform("first")
    table["change"] = table["accuracy_mean"] - study
    table = table.reset_index().drop(columns="order")
    table["method"] = table["method"].map(method_label)
    return table.set_index(["dataset", "method", "fixed"])


SPREAD_STATS = ["std", "kurtosis", "near_zero_share"]


def spread_and_kept(weights: pd.DataFrame, pruning: pd.DataFrame, fraction: float = 0.9) -> pd.DataFrame:
    """Per run: spread of its weights and the share of its unpruned accuracy kept at `fraction` pruned."""
    keys = ["dataset", "protocol", "method", "seed"]
    spread = all_layers(weights)
    rows = primary_rows(pruning)
    accuracy = rows.pivot_table(index=keys, columns=rows["fraction"].round(6), values="accuracy_mean")
    kept = (accuracy[fraction] / accuracy[0.0]).rename("kept").reset_index()
    frame = spread[keys + SPREAD_STATS].merge(kept, on=keys)
    return main_protocols(frame).reset_index(drop=True)


def spread_correlation(frame: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of each spread statistic with the accuracy kept, per dataset and protocol."""
    def correlate(group: pd.DataFrame) -> pd.Series:
        ranks = group[SPREAD_STATS + ["kept"]].rank()
        values = {stat: ranks[stat].corr(ranks["kept"]) for stat in SPREAD_STATS}
        return pd.Series({**values, "runs": len(group)})
    return frame.groupby(["dataset", "protocol"])[SPREAD_STATS + ["kept"]].apply(correlate)


def augmentation_check(pruning: pd.DataFrame, dataset: str = "fashion-mnist") -> tuple[pd.DataFrame, str]:
    """Whether the study's published table can come from its code: unpruned accuracy (own criterion, mean over
    seeds) under `study`, under `study` without its augmentation (where the ablation ran) and under `corrected`,
    beside the study's number; and a sentence saying which matches."""
    rows = primary_rows(pruning)
    rows = rows[(rows["dataset"] == dataset) & (rows["fraction"].round(6) == 0.0)]
    protocols = {"study": "study's code", f"{WITHOUT}augmentation": "study's code without augmentation",
                 "corrected": "corrected"}
    table = rows[rows["protocol"].isin(protocols)].pivot_table(index="method", columns="protocol",
                                                               values="accuracy_mean")
    table = table.reindex(columns=[p for p in protocols if p in table.columns]).rename(columns=protocols)
    table["study's table"] = [REPORTED.get(dataset, {}).get(m, (float("nan"),))[0] for m in table.index]
    table = table.loc[method_order(table.index)]
    both = table.dropna()
    if protocols[f"{WITHOUT}augmentation"] not in table.columns or both.empty:
        return table.rename(index=method_label), "The ablation without the augmentation has not run here."
    code = (both[protocols["study"]] - both["study's table"]).abs()
    plain = (both[protocols[f"{WITHOUT}augmentation"]] - both["study's table"]).abs()
    names = ", ".join(method_label(m) for m in both.index)
    name = DATASET_LABELS.get(dataset, dataset)
    text = (f"On {name}, the study's code as written (every image randomly rotated and rescaled) gives "
            f"unpruned accuracies {code.min():.3f}-{code.max():.3f} away from the study's table ({names}); the "
            f"same code without the augmentation comes within {plain.max():.3f}. The study's published "
            f"{name} numbers cannot come from its public code as written: they match the code with the "
            "augmentation switched off.")
    if plain.max() >= code.min():
        text = (f"On {name}, the study's code without the augmentation does not come closer to the study's "
                f"table than the code as written ({plain.max():.3f} against {code.min():.3f}).")
    return table.rename(index=method_label), text


def mean_architecture(architectures: pd.Series) -> str:
    """Architectures such as 784-412-288-10 averaged over runs layer by layer, in whole units."""
    layers = architectures.str.split("-", expand=True).astype(int).mean()
    return "-".join(f"{units:.0f}" for units in layers)


def units_left(pruning: pd.DataFrame, fractions: tuple[float, ...] = (0.9, 0.98)) -> pd.DataFrame:
    """Hidden units each model keeps after pruning by its own criterion (a unit is cut off when all its incoming
    or all its outgoing weights are removed): per dataset and method, the mean over seeds per hidden layer at each
    fraction, as an architecture such as 784-412-288-10."""
    if "architecture" not in pruning:
        return pd.DataFrame()
    rows = primary_rows(pruning[pruning["protocol"] == "corrected"])
    rows = rows[rows["fraction"].round(6).isin([round(f, 6) for f in fractions])]
    table = {}
    for (dataset, method, fraction), group in rows.groupby(["dataset", "method", rows["fraction"].round(6)]):
        table.setdefault((dataset, method), {})[f"{100 * fraction:g} % pruned"] = mean_architecture(group["architecture"])
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["dataset", "method"])
    order = {m: i for i, m in enumerate(method_order(frame.index.get_level_values("method")))}
    return frame.sort_index(key=lambda level: level.map(order) if level.name == "method" else level != "mnist")


def active_units(history: pd.DataFrame, score: str = "val_acc") -> pd.DataFrame:
    """BBB's active hidden units per layer (a unit with an outgoing weight at SNR >= 0 dB) at each run's kept epoch
    (its best `score`, else its last), mean over the corrected protocol's seeds per dataset."""
    columns = sorted(c for c in history if c.startswith("active_units_"))
    bbb = history[(history["method"] == "bbb") & (history["protocol"] == "corrected")]
    rows = bbb.dropna(subset=columns) if columns else history.iloc[:0]
    if rows.empty:
        return pd.DataFrame()
    kept = []
    for _, run in rows.groupby(["dataset", "seed", "protocol", "variant"]):
        kept.append(run.loc[run[score].idxmax()] if score in run and run[score].notna().any() else run.iloc[-1])
    frame = pd.DataFrame(kept).groupby("dataset")[columns].mean()
    frame.columns = [f"hidden layer {c.rsplit('_', 1)[1]}" for c in columns]
    return frame.sort_index(key=lambda index: index != "mnist")
