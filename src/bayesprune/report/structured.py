"""Structured compression with BC-GNJ: the units its posterior keeps over training, its test error and the
architecture left at each fraction removed by whole units or by single weights, and the network as trained (every
unit above the log alpha threshold removed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesprune.evaluate.scores import UNIT_THRESHOLD_CRITERION
from bayesprune.pipeline.results import dense_architectures
from bayesprune.report.formatting import DATASET_LABELS
from bayesprune.report.tables import mean_architecture
from bayesprune.report.verdicts import NOT_TESTED, combine, interval

NETWORK_NAMES = {"784-300-100-10": "LeNet-300-100"}  # dense architectures with a name of their own
UNITS_REMOVED = 0.5  # "prunes neurons": as trained, at least half of its hidden units removed
BITS_GAIN = 2.0  # "and bits": reducing the precision at least doubles the compression that pruning reached
PRECISION_KEEPS = 0.02  # at most 2 points of test accuracy lost, pruned and at reduced precision, against dense
CRITERION_NAMES = {UNIT_THRESHOLD_CRITERION: "as trained (units above the threshold removed)",
                   "unit_log_alpha": "whole units, by log alpha", "magnitude": "single weights, by |mu|"}


def has_bcgnj(results_dir: Path) -> bool:
    """Whether a profile has a finished BC-GNJ run."""
    return any(Path(results_dir).glob("runs/*-bcgnj-*/manifest.json"))


def networks(pruning: pd.DataFrame) -> dict[str, str]:
    """Each variant's network as readers know it: LeNet-300-100, else its dense architecture (784-500-500-10)."""
    return {variant: NETWORK_NAMES.get(architecture, architecture)
            for variant, architecture in dense_architectures(pruning).items()}


def structured_sweep(pruning: pd.DataFrame) -> pd.DataFrame:
    """BC-GNJ pruned by whole units, by single weights and as trained: per dataset, network, criterion and fraction of
    weights removed, the mean and sd over seeds of the test error (%), the mean compression ratio and the mean
    architecture left."""
    rows = pruning[(pruning["method"] == "bcgnj") & (pruning["protocol"] == "corrected")].copy()
    rows = rows[rows["criterion"].isin(CRITERION_NAMES)]
    rows["network"] = rows["variant"].map(networks(rows))
    rows["error"] = 100 * (1 - rows["accuracy_mean"])
    # as trained, each seed removes its own share of the weights: one row for all of them
    rows["fraction"] = rows["fraction"].round(4).where(rows["criterion"] != UNIT_THRESHOLD_CRITERION, -1.0)
    table = []
    for (dataset, network, criterion, _), group in rows.groupby(["dataset", "network", "criterion", "fraction"]):
        table.append({"dataset": dataset, "network": network, "pruned by": CRITERION_NAMES[criterion],
                      "weights removed (%)": 100 * group["achieved_sparsity"].mean(), "seeds": group["seed"].nunique(),
                      "test error (%)": group["error"].mean(), "sd": group["error"].std(),
                      "compression ratio": group["compression"].mean(),
                      "architecture left": mean_architecture(group["architecture"])})
    frame = pd.DataFrame(table)
    if frame.empty:
        return frame
    rank = {label: i for i, label in enumerate(CRITERION_NAMES.values())}
    keys = {"dataset": lambda c: c != "mnist", "pruned by": lambda c: c.map(rank)}
    frame = frame.sort_values(["dataset", "network", "pruned by", "weights removed (%)"],
                              key=lambda c: keys.get(c.name, lambda same: same)(c))
    return frame.set_index(["dataset", "network", "pruned by"])


def units_by_epoch(history: pd.DataFrame, names: dict[str, str], every: int = 10) -> pd.DataFrame:
    """The units BC-GNJ keeps per layer (log alpha below the threshold), mean over seeds, at every `every`-th epoch
    and the last, per dataset and network (`names`: variant -> network, from `networks`)."""
    rows = history[(history["method"] == "bcgnj") & (history["protocol"] == "corrected")]
    columns = sorted(c for c in rows if c.startswith("units_kept_"))
    if rows.empty or not columns:
        return pd.DataFrame()
    means = rows.groupby(["dataset", "variant", "epoch"])[columns].mean().reset_index()
    last = means.groupby(["dataset", "variant"])["epoch"].transform("max")
    shown = means[(means["epoch"] % every == 0) | (means["epoch"] == last)].assign(network=lambda f: f["variant"].map(names))
    labels = {c: "inputs" if c.endswith("_0") else f"hidden layer {c.rsplit('_', 1)[1]}" for c in columns}
    shown = shown.sort_values(["dataset", "network", "epoch"], key=lambda c: c != "mnist" if c.name == "dataset" else c)
    return shown.set_index(["dataset", "network", "epoch"])[columns].rename(columns=labels)


def structured_reading(sweep: pd.DataFrame, fraction: float = 90.0) -> str:
    """The sweep in markdown: per network, a line with the compression and test error as trained; then a paragraph
    with the error at `fraction` % of the weights removed by whole units against single weights (the details are the
    sweep's table)."""
    trained_parts, pruned_parts, worse = [], [], []
    for (dataset, network), part in sweep.groupby(level=["dataset", "network"], sort=False):
        part = part.droplevel(["dataset", "network"])
        where = network if sweep.index.get_level_values("dataset").nunique() == 1 else \
            f"{network} ({DATASET_LABELS.get(dataset, dataset)})"
        as_trained = CRITERION_NAMES[UNIT_THRESHOLD_CRITERION]
        if as_trained in part.index:
            trained = part.loc[[as_trained]].iloc[0]
            trained_parts.append(f"{trained['compression ratio']:.1f}x at {trained['test error (%)']:.2f} % test error "
                                 f"on {where}")
        at = {way: part.loc[[label]].set_index("weights removed (%)")["test error (%)"]
              for way, label in (("units", CRITERION_NAMES["unit_log_alpha"]), ("weights", CRITERION_NAMES["magnitude"]))
              if label in part.index}
        if len(at) == 2:
            near = {way: errors.iloc[(errors.index.to_series() - fraction).abs().argmin()] for way, errors in at.items()}
            pruned_parts.append(f"{near['units']:.2f} against {near['weights']:.2f} %")
            worse.append(near["units"] > near["weights"])
    sentences = []
    if trained_parts:
        sentences.append("As trained, BC-GNJ removes whole units down to:\n\n" + "\n".join(f"- {part}" for part in trained_parts))
    if pruned_parts:
        how = "more" if all(worse) else "less" if not any(worse) else "more or less, by network,"
        sentences.append(f"At {fraction:g} % of the weights removed, whole units cost {how} error than single weights "
                         f"({', '.join(pruned_parts)}).")
    return "\n\n".join(sentences)


def _hidden(architecture: str) -> int:
    """The hidden units of an architecture such as 784-300-100-10."""
    return sum(int(units) for units in architecture.split("-")[1:-1])


def prunes_units_and_bits(pruning: pd.DataFrame, precision: pd.DataFrame | None) -> dict[str, object]:
    """Louizos et al.'s claim: Bayesian compression with group priors prunes whole units and bits, not only
    weights. Per dataset and network, over seeds: BC-GNJ as trained removes at least `UNITS_REMOVED` of its hidden
    units, its precision reduction multiplies the compression by at least `BITS_GAIN`, and it loses at most
    `PRECISION_KEEPS` of test accuracy against the dense network."""
    claim = {"claim": "Bayesian compression with group priors (BC-GNJ) prunes whole units and bits, not only weights",
             "study": "named, could not be reproduced (Louizos et al. 2017)", "see": ("compression",)}
    if precision is None or "bcgnj" not in set(precision["method"]):
        return {**claim, "ours": "no BC-GNJ runs", "verdict": NOT_TESTED}
    dense = pruning[(pruning["method"] == "bcgnj") & (pruning["protocol"] == "corrected")
                    & (pruning["criterion"] == "unit_log_alpha") & (pruning["fraction"] == 0)].set_index(["dataset", "variant", "seed"])
    names = networks(pruning[pruning["method"] == "bcgnj"])
    verdicts, lines = [], []
    rows = precision[(precision["method"] == "bcgnj") & (precision["protocol"] == "corrected")]
    for (dataset, variant), group in rows.groupby(["dataset", "variant"], sort=False):
        base = dense.loc[[(dataset, variant, seed) for seed in group["seed"]]]
        removed = interval(1 - group["architecture"].map(_hidden).to_numpy() / base["architecture"].map(_hidden).to_numpy())
        gain = interval(group["compression_precision"] / group["compression_pruned"])
        lost = interval(base["accuracy_mean"].to_numpy() - group["accuracy_reduced"].to_numpy())
        verdicts += [removed.above(UNITS_REMOVED), gain.above(BITS_GAIN), lost.below(PRECISION_KEEPS)]
        lines.append(f"{DATASET_LABELS.get(dataset, dataset)}, {names.get(variant, variant)}: hidden units removed (%) "
                     f"{removed.text(0, 100)}, compression multiplied by the bits {gain.text(1)}, test accuracy "
                     f"lost (points) {lost.text(1, 100)}")
    rule = (f"as trained, at least {100 * UNITS_REMOVED:g} % of the hidden units removed, the bits at least "
            f"x{BITS_GAIN:g} more compression, at most {100 * PRECISION_KEEPS:g} points lost")
    return {**claim, "verdict": combine(verdicts), "ours": f"{'; '.join(lines)} ({rule})"}
