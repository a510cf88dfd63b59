"""Figures of the report: the prior, training curves, weight histograms, pruning curves, the compression frontier.

Each function returns a matplotlib Figure that pyplot does not track, so a notebook shows it once,
where it is displayed.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from bayesprune.data.augment import random_affine
from bayesprune.model.bayes import GaussianPrior, ScaleMixturePrior
from bayesprune.evaluate.diagnostics import LOG_MU_EDGES, LOG_SIGMA_EDGES
from bayesprune.compress.prune import own_criteria
from bayesprune.report.frontier import SCHEDULE_LABELS, THRESHOLD_CRITERION, pareto_front
from bayesprune.report.reference import method_label
from bayesprune.report.tables import method_order, summarise

DATASET_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def prior_figure(pi: float, sigma1: float, sigma2: float, zooms: tuple[float, ...] = (1.0, 20.0, 400.0)) -> Figure:
    """The two Gaussian components and the scale mixture at several vertical zoom levels."""
    w = torch.linspace(-3 * sigma1, 3 * sigma1, 4001, dtype=torch.float64)
    curves = {
        f"N(0, {sigma1:.3g}²) weighted by π": pi * GaussianPrior(sigma1).log_prob(w).exp(),
        f"N(0, {sigma2:.3g}²) weighted by 1-π": (1 - pi) * GaussianPrior(sigma2).log_prob(w).exp(),
        "mixture": ScaleMixturePrior(pi, sigma1, sigma2).log_prob(w).exp(),
    }
    fig = Figure(figsize=(4.2 * len(zooms), 3.4))
    axes = fig.subplots(1, len(zooms))
    peak = float(curves["mixture"].max())
    for ax, zoom in zip(np.atleast_1d(axes), zooms):
        for (label, density), style in zip(curves.items(), ("--", ":", "-")):
            ax.plot(w, density, style, label=label)
        ax.set_ylim(0, peak / zoom)
        ax.set_title(f"density up to {peak / zoom:.3g}")
        ax.set_xlabel("w")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_curve(history: pd.DataFrame) -> Figure:
    """Training loss and test accuracy of one run by epoch."""
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    left.plot(history["epoch"], history["loss"], marker="o", label="loss (per example)")
    left.plot(history["epoch"], history["nll"], marker=".", label="NLL (per example)")
    left.set_xlabel("epoch")
    left.set_yscale("log")
    left.legend()
    right.plot(history["epoch"], history["train_acc"], marker=".", label="train")
    right.plot(history["epoch"], history["test_acc"], marker="o", label="test")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.legend()
    fig.tight_layout()
    return fig


COLUMN_LABELS = {"nll": "training NLL per example", "loss": "training loss per example", "test_acc": "test accuracy",
                 "train_acc": "training accuracy", "val_acc": "validation accuracy"}
PROTOCOL_LINES = {"corrected": "-", "study": "--"}


def training_curves(history: pd.DataFrame, column: str = "nll") -> Figure:
    """One panel per dataset: a column of the history by epoch (mean over seeds), a colour per method and a line
    style per protocol; losses on a log axis, accuracies on a linear one."""
    datasets = [d for d in DATASET_TITLES if d in set(history["dataset"])]
    fig = Figure(figsize=(5.5 * len(datasets), 3.6 + 0.5))
    axes = fig.subplots(1, len(datasets), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        rows = history[history["dataset"] == dataset]
        for protocol in sorted(rows["protocol"].unique()):
            for method in method_order(rows["method"].unique()):
                curve = rows[(rows["method"] == method) & (rows["protocol"] == protocol)].groupby("epoch")[column].mean()
                if len(curve):
                    label = method_label(method) + (f", {protocol}" if rows["protocol"].nunique() > 1 else "")
                    ax.plot(curve.index, curve.values, PROTOCOL_LINES.get(protocol, ":"), color=method_color(method),
                            label=label)
        ax.set_title(DATASET_TITLES[dataset])
        ax.set_xlabel("epoch")
        ax.set_ylabel(COLUMN_LABELS.get(column, column))
        if column in ("nll", "loss"):
            ax.set_yscale("log")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    columns = min(len(labels), 3 * len(datasets))
    fig.legend(handles, labels, loc="lower center", ncol=columns, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.05 * (1 + (len(labels) - 1) // columns), 1, 1))
    return fig


def weight_histograms(histogram: pd.DataFrame, dataset: str, protocol: str = "") -> Figure:
    """The study's Figures 8/9: weight distributions of every model of one dataset (seeds pooled)."""
    rows = histogram[histogram["dataset"] == dataset]
    methods = method_order(rows["method"].unique())
    fig = Figure(figsize=(3.2 * len(methods), 2.8))
    axes = fig.subplots(1, len(methods), sharex=True, squeeze=False)
    for ax, method in zip(axes[0], methods):
        bins = rows[rows["method"] == method].groupby(["bin_left", "bin_right"])["count"].sum().reset_index()
        ax.stairs(bins["count"], np.append(bins["bin_left"].values, bins["bin_right"].values[-1]), fill=True)
        ax.set_title(method_label(method))
        ax.set_yscale("log")
        ax.set_xlabel("weight (BBB: posterior mean)")
    fig.suptitle(DATASET_TITLES.get(dataset, dataset) + (f", {protocol} protocol" if protocol else ""))
    fig.tight_layout()
    return fig


def _fraction_axis(ax) -> None:
    """x: fraction pruned on a -log10(1 - f) scale (so 0.9, 0.99 are evenly spaced); y: test accuracy in [0, 1]."""
    ax.set_xscale("function", functions=(lambda f: -np.log10(np.clip(1 - f, 1e-6, None)),
                                         lambda t: 1 - 10.0 ** (-t)))
    ax.set_xticks([0, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99])
    ax.set_xticklabels(["0", ".5", ".75", ".9", ".95", ".98", ".99"])
    ax.set_xlabel("fraction of weights pruned")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)


# One colour per method for the whole book, from Paul Tol's colour-blind-safe "muted" scheme (black and grey for
# the last two); line styles tell criteria and protocols apart.
METHOD_COLORS = {"sgd": "#332288", "dropout0.5": "#88CCEE", "dropout0.75": "#44AA99", "dropout0.9": "#999933",
                 "bbb": "#CC6677", "sparsevd": "#117733", "sgd-l2": "#AA4499", "dropout0.5-l2": "#DDCC77",
                 "sgd-l1": "#882255", "dropout0.5-l1": "#777777", "sgd-mixture": "#000000"}
CRITERION_LINES = {"magnitude": "-", "snr": "--", "snr_rho": ":"}


def method_color(method: str) -> str:
    """One colour per method, the same in every figure of the book."""
    return METHOD_COLORS.get(method, "#BBBBBB")


def pruning_curves(pruning: pd.DataFrame, column: str = "accuracy_mean") -> Figure:
    """Accuracy against pruned fraction (mean +- std over seeds), one panel per protocol and dataset: a colour
    per method, a line style per criterion (solid: magnitude, dashed: SNR, dotted: the study's |mu|/rho)."""
    summary = summarise(pruning, column)
    datasets = [d for d in DATASET_TITLES if d in set(summary["dataset"])]
    protocols = sorted(summary["protocol"].unique())
    fig = Figure(figsize=(5.8 * len(datasets), 3.9 * len(protocols)))
    axes = fig.subplots(len(protocols), len(datasets), squeeze=False)
    for row, protocol in zip(axes, protocols):
        for ax, dataset in zip(row, datasets):
            rows = summary[(summary["dataset"] == dataset) & (summary["protocol"] == protocol)]
            for method in method_order(rows["method"].unique()):
                for criterion, line in rows[rows["method"] == method].groupby("criterion"):
                    ax.errorbar(line["fraction"], line["mean"], yerr=line["std"].fillna(0), marker="o", capsize=2,
                                color=method_color(method), linestyle=CRITERION_LINES.get(criterion, "-."),
                                label=f"{method_label(method)} ({criterion})")
            _fraction_axis(ax)
            ax.set_title(f"{DATASET_TITLES[dataset]}, {protocol}" if len(protocols) > 1 else DATASET_TITLES[dataset])
            ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def histogram_of_run(histogram: pd.DataFrame) -> Figure:
    """Weight histogram of one run."""
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    edges = np.append(histogram["bin_left"].values, histogram["bin_right"].values[-1])
    ax.stairs(histogram["count"], edges, fill=True)
    ax.set_yscale("log")
    ax.set_xlabel("weight (BBB: posterior mean)")
    ax.set_ylabel("count")
    fig.tight_layout()
    return fig


def report_style() -> None:
    """Figure and table defaults shared by every notebook of the report; figures display as PNG."""
    pd.set_option("display.precision", 4)
    matplotlib.rcParams.update({"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3})
    from IPython import get_ipython

    if get_ipython() is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")


def kl_weight_figure(batches: int = 600, shown: int = 12) -> Figure:
    """Complexity-cost weight of the first minibatches of an epoch: Blundell's, uniform, and the study's code."""
    from bayesprune.model.elbo import KL_WEIGHTINGS

    fig = Figure(figsize=(6, 3.4))
    ax = fig.subplots()
    for name, weights in KL_WEIGHTINGS.items():
        values = weights(batches)
        ax.plot(range(1, shown + 1), values[:shown], marker="o", label=f"{name} (sum {values.sum():.2f})")
    ax.set_yscale("log")
    ax.set_xlabel("minibatch of the epoch")
    ax.set_ylabel("weight of the complexity cost")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def spread_figure(frame: pd.DataFrame, stat: str = "std") -> Figure:
    """Accuracy kept at 90 % pruned against a spread statistic of the weights, one point per run."""
    datasets = list(frame["dataset"].unique())
    fig = Figure(figsize=(4.6 * len(datasets), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(datasets), squeeze=False)[0])
    markers = {"corrected": "o", "study": "s"}
    for ax, dataset in zip(axes, datasets):
        rows = frame[(frame["dataset"] == dataset) & frame["protocol"].isin(markers)]
        for (method, protocol), group in rows.groupby(["method", "protocol"]):
            ax.scatter(group[stat], group["kept"], marker=markers[protocol], label=f"{method_label(method)}, {protocol}")
        ax.set_xlabel(f"weight {stat}")
        ax.set_ylabel("accuracy kept at 90 % pruned")
        ax.set_title(DATASET_TITLES.get(dataset, dataset))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def augmentation_figure(shown: int = 6, seed: int = 0) -> Figure:
    """A test glyph and its randomly rotated and scaled copies, as the study's Fashion-MNIST notebooks saw them."""
    glyph = torch.zeros(28, 28)
    glyph[5:23, 8:12] = 1.0
    glyph[5:9, 8:21] = 1.0
    glyph[12:16, 8:18] = 1.0
    images = glyph.flatten().repeat(shown, 1)
    out = random_affine(images, torch.Generator().manual_seed(seed)).view(shown, 28, 28)
    fig = Figure(figsize=(1.5 * (shown + 1), 1.8))
    axes = fig.subplots(1, shown + 1)
    for ax, image, title in zip(axes, [glyph, *out], ["original", *[""] * shown]):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def step_time_figure(timings: pd.DataFrame) -> Figure:
    """Milliseconds per training step of every benched model, one panel per machine, SGD marked."""
    machines = list(dict.fromkeys(timings.index.get_level_values("machine")))
    fig = Figure(figsize=(6.5 * len(machines), 3.2))
    axes = fig.subplots(1, len(machines), squeeze=False)
    for ax, machine in zip(axes[0], machines):
        rows = timings.loc[machine]["step_ms"].sort_values()
        ax.barh(rows.index, rows.values, color=["C1" if name.startswith(("bbb", "blitz")) else "C0" for name in rows.index])
        if "sgd" in rows.index:
            ax.axvline(rows["sgd"], color="k", lw=0.8, ls=":")
            for y, value in enumerate(rows.values):
                ax.text(value, y, f" {value / rows['sgd']:.1f}x", va="center", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("ms per training step (batch 100, log scale)")
        ax.set_title(machine, fontsize=9)
        ax.set_xlim(rows.min() / 1.5, rows.max() * 3)
    fig.tight_layout()
    return fig


CRITERION_STYLES = {"snr": ("-", "SNR |mu|/sigma"), "magnitude": ("--", "|mu|")}


def pruning_by_variant(pruning: pd.DataFrame, variants: list[str]) -> Figure:
    """One small panel per regime-study step: test accuracy pruned by SNR (solid) and by |mu| (dashed)."""
    columns = 3
    rows_count = -(-len(variants) // columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows_count))
    axes = fig.subplots(rows_count, columns, squeeze=False).flatten()
    for ax, variant in zip(axes, variants):
        rows = pruning[pruning["variant"] == variant]
        for criterion, (style, label) in CRITERION_STYLES.items():
            line = rows[rows["criterion"] == criterion].groupby("fraction")["accuracy_mean"].mean()
            ax.plot(line.index, line.values, style, marker="o", color="C0", label=label)
        _fraction_axis(ax)
        ax.set_title(variant, fontsize=10)
        ax.legend(fontsize=8, loc="lower left")
    for ax in axes[len(variants):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def posterior_movement(history: pd.DataFrame, groups: dict[str, list[str]], by: str = "variant") -> Figure:
    """Per group of runs (values of column `by`, seeds averaged): the share of sigmas moved by more than 2x
    and the median sigma, by epoch."""
    fig = Figure(figsize=(11, 3.4 * len(groups)))
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for (title, variants), (moved, median) in zip(groups.items(), axes):
        for index, variant in enumerate(variants):
            run = history[history[by] == variant].groupby("epoch")[["sigma_moved", "sigma_q50"]].mean()
            moved.plot(run.index, run["sigma_moved"], marker=".", color=f"C{index}", label=variant)
            median.plot(run.index, run["sigma_q50"], marker=".", color=f"C{index}", label=variant)
        moved.set_ylabel("share of sigmas moved > 2x")
        moved.set_ylim(-0.02, 1.02)
        median.set_ylabel("median sigma")
        median.set_yscale("log")
        for ax in (moved, median):
            ax.set_xlabel("epoch")
            ax.set_title(title, fontsize=10)
        moved.legend(fontsize=8)
    fig.tight_layout()
    return fig


def snr_density(snr: pd.DataFrame, groups: dict[str, list[str]], by: str = "variant") -> Figure:
    """Blundell et al.'s Figure 4 per group of runs (values of column `by`, seeds pooled): the density of the
    weights' signal-to-noise ratio in dB."""
    fig = Figure(figsize=(5.5 * len(groups), 3.6))
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (title, variants) in zip(axes, groups.items()):
        for index, variant in enumerate(variants):
            bins = snr[snr[by] == variant].groupby(["bin_left", "bin_right"])["count"].sum().reset_index()
            width = bins["bin_right"] - bins["bin_left"]
            ax.stairs(bins["count"] / (bins["count"].sum() * width),
                      np.append(bins["bin_left"].values, bins["bin_right"].values[-1]),
                      color=f"C{index}", label=variant)
        ax.set_xlabel("signal-to-noise ratio |mu|/sigma (dB)")
        ax.set_ylabel("density")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def mu_sigma_maps(histogram: pd.DataFrame, variants: list[str], by: str = "variant") -> Figure:
    """Where the weights sit in (|mu|, sigma), one panel per value of column `by` (seeds pooled); below the
    diagonal |mu| > sigma (SNR > 0 dB)."""
    fig = Figure(figsize=(4.2 * len(variants), 3.6))
    axes = fig.subplots(1, len(variants), squeeze=False)[0]
    for ax, variant in zip(axes, variants):
        cells = histogram[histogram[by] == variant]
        mu_edges, sigma_edges = LOG_MU_EDGES.numpy(), LOG_SIGMA_EDGES.numpy()
        counts = np.zeros((len(sigma_edges) - 1, len(mu_edges) - 1))
        rows = np.searchsorted(sigma_edges, cells["log10_sigma_left"].values + 1e-6) - 1
        columns = np.searchsorted(mu_edges, cells["log10_mu_left"].values + 1e-6) - 1
        np.add.at(counts, (rows, columns), cells["count"].values)
        shown = np.ma.log10(np.ma.masked_equal(counts, 0))
        mesh = ax.pcolormesh(mu_edges, sigma_edges, shown, cmap="viridis", shading="flat")
        low, high = max(mu_edges[0], sigma_edges[0]), min(mu_edges[-1], sigma_edges[-1])
        ax.plot([low, high], [low, high], color="white", linewidth=1)
        ax.set_xlabel("log10 |mu|")
        ax.set_ylabel("log10 sigma")
        ax.set_title(variant, fontsize=10)
        fig.colorbar(mesh, ax=ax, label="log10 weights")
    fig.tight_layout()
    return fig


def _ratio_axis(ax, label: str = "compression ratio (parameters / nonzero parameters)") -> None:
    """x: compression ratio on a log axis, labelled 1x, 10x, 100x."""
    ax.set_xscale("log")
    ax.set_xticks([1, 2, 5, 10, 20, 50, 100, 200])
    ax.set_xticklabels(["1x", "2x", "5x", "10x", "20x", "50x", "100x", "200x"])
    ax.set_xlabel(label)


WEIGHT_MAGNITUDES = {"bbb": "|mu|", "sparsevd": "|theta|"}  # what magnitude pruning ranks in a method with noise


def frontier_figure(summary: pd.DataFrame, anchors: pd.DataFrame, limits: tuple[float, float] = (1.0, 20.0),
                    network: str = "LeNet-300-100") -> Figure:
    """Test error against compression ratio, one panel per pruning schedule: each method's own criterion (mean
    over seeds, a band of +- 1 sd), BBB by |mu| and sparse VD by |theta| dotted, sparse VD as trained as a star,
    the published points in black and the Pareto front of all our points in grey."""
    schedules = [s for s in SCHEDULE_LABELS if s in set(summary["schedule"])]
    front = pareto_front(summary)
    fig = Figure(figsize=(5.2 * len(schedules), 4.6))
    axes = fig.subplots(1, len(schedules), squeeze=False, sharey=True)[0]
    for ax, schedule in zip(axes, schedules):
        rows = summary[summary["schedule"] == schedule]
        for (method, criterion), line in rows.groupby(["method", "criterion"], sort=False):
            line = line.sort_values("compression")
            if criterion == THRESHOLD_CRITERION:
                ax.plot(line["compression"], line["error"], "*", markersize=13, color=method_color(method),
                        markeredgecolor="black", label=f"{method_label(method)} as trained (log alpha > 3)")
                continue
            own = criterion in own_criteria(method)[:1]  # as frontier.best_ratios reads it
            ranked = WEIGHT_MAGNITUDES.get(method, criterion) if criterion == "magnitude" else criterion
            ax.plot(line["compression"], line["error"], marker="o", markersize=3, color=method_color(method),
                    linestyle="-" if own else ":", label=method_label(method) + ("" if own else f" by {ranked}"))
            if own:
                sd = line["error_sd"].fillna(0)
                ax.fill_between(line["compression"], line["error"] - sd, line["error"] + sd, alpha=0.15,
                                color=method_color(method), linewidth=0)
        ax.step(front["compression"], front["error"], where="pre", color="grey", linestyle="--", linewidth=1,
                label="Pareto front (all schedules)")
        for index, (label, point) in enumerate(anchors.iterrows()):
            ax.plot(point["compression"], point["error"], "kD", markersize=4)
            ax.annotate(label.split(" (")[0].replace("Han et al. 2015, ", "Han "), (point["compression"], point["error"]),
                        fontsize=6.5, xytext=(4, 4 if index % 2 else -9), textcoords="offset points")
        _ratio_axis(ax)
        ax.set_yscale("log")
        ax.set_ylim(*limits)
        ax.set_yticks([1, 1.5, 2, 3, 5, 10, 20])
        ax.set_yticklabels(["1", "1.5", "2", "3", "5", "10", "20"])
        ax.set_title(SCHEDULE_LABELS[schedule], fontsize=10)
    axes[0].set_ylabel(f"test error (%), {network}, MNIST")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def storage_figure(points: pd.DataFrame) -> Figure:
    """Stored size of the pruned network against its compression ratio: dense, CSR and bitmask storage in float32
    and float16 (the nonzero pattern of every pruned network of the frontier, mean per fraction)."""
    sizes = points.groupby("fraction")[[c for c in points if c.startswith("bytes_")] + ["compression"]].mean()
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for column, style in (("bytes_dense_float32", "k-"), ("bytes_dense_float16", "k--"), ("bytes_csr_float32", "C0-"),
                          ("bytes_csr_float16", "C0--"), ("bytes_bitmask_float32", "C1-"), ("bytes_bitmask_float16", "C1--")):
        label = column.removeprefix("bytes_").replace("_", ", ")
        ax.plot(sizes["compression"], sizes[column] / 1024, style, marker="o", markersize=3, label=label)
    _ratio_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel("stored size (KiB)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def latency_figure(latency: pd.DataFrame) -> Figure:
    """Median CPU time of one forward pass, dense against CSR weight matrices, per sparsity; a panel per batch size."""
    batches = sorted(latency["batch"].unique())
    fig = Figure(figsize=(5.2 * len(batches), 3.6))
    axes = fig.subplots(1, len(batches), squeeze=False)[0]
    for ax, batch in zip(axes, batches):
        rows = latency[latency["batch"] == batch].sort_values("sparsity")
        ratio = 1 / (1 - rows["sparsity"])
        ax.plot(ratio, rows["dense_ms"], "k-", label="dense")
        ax.plot(ratio, rows["csr_ms"], "C0-o", markersize=3, label="CSR (torch.sparse)")
        _ratio_axis(ax, "compression ratio (1 / (1 - sparsity))")
        ax.set_yscale("log")
        ax.set_ylabel("ms per forward pass")
        ax.set_title(f"batch {batch}, {rows['network'].iloc[0]}", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


SCORE_TITLES = {"val_acc": "as trained", "val_acc_pruned": "after pruning 90 % (own criterion)"}


def strength_figure(curves: pd.DataFrame) -> Figure:
    """The penalised baselines' best validation accuracy against the log of their prior's scale (strong on the
    left, weak on the right): a row per score (as trained, pruned 90 %), a column per dataset, a line per method."""
    datasets = [d for d in DATASET_TITLES if d in set(curves["dataset"])]
    scores = [s for s in SCORE_TITLES if s in set(curves["score"])]
    fig = Figure(figsize=(4.6 * len(datasets), 3.2 * len(scores) + 0.6))
    axes = np.atleast_2d(fig.subplots(len(scores), len(datasets), squeeze=False))
    for row, score in enumerate(scores):
        for col, dataset in enumerate(datasets):
            ax = axes[row, col]
            part = curves[(curves["score"] == score) & (curves["dataset"] == dataset)]
            for method in method_order(part["method"].unique()):
                line = part[part["method"] == method].sort_values("prior scale")
                ax.plot(line["prior scale"], line["validation accuracy"], marker="o", color=method_color(method),
                        linestyle="--" if method.endswith("-l1") else "-", label=method_label(method))
            ax.set_title(f"{DATASET_TITLES[dataset]}: {SCORE_TITLES[score]}", fontsize=10)
            ax.set_xlabel("log of the prior's scale (Gaussian sigma, Laplace b)")
            ax.set_ylabel("validation accuracy")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def uncertainty_curves(summary: pd.DataFrame, metrics: dict[str, str], methods: list[str]) -> Figure:
    """Each metric (mean over seeds, band: +- 1 sd) against the fraction pruned: a row per metric, a column per
    dataset, a line per method (at most six)."""
    datasets = [d for d in DATASET_TITLES if d in set(summary.index.get_level_values("dataset"))]
    fig = Figure(figsize=(4.6 * len(datasets), 2.9 * len(metrics) + 0.6))
    axes = np.atleast_2d(fig.subplots(len(metrics), len(datasets), squeeze=False))
    for row, (metric, label) in enumerate(metrics.items()):
        for col, dataset in enumerate(datasets):
            ax = axes[row, col]
            for method in methods:
                if (dataset, method) not in summary.index.droplevel("fraction"):
                    continue
                part = summary.loc[(dataset, method)]
                x, mean, sd = part.index.to_numpy(), part[(metric, "mean")], part[(metric, "std")].fillna(0)
                ax.plot(x, mean, marker="o", color=method_color(method), label=method_label(method))
                ax.fill_between(x, mean - sd, mean + sd, color=method_color(method), alpha=0.15)
            _fraction_axis(ax)
            ax.set_ylim(auto=True)
            ax.set_ylabel(label)
            ax.set_title(DATASET_TITLES[dataset], fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def reliability_diagrams(bins: pd.DataFrame, dataset: str, methods: list[str],
                         fractions: tuple[float, ...] = (0.0, 0.9, 0.98)) -> Figure:
    """Accuracy against confidence per confidence bin (pooled over seeds), a panel per pruned fraction, a line per
    method; the diagonal is perfect calibration."""
    fig = Figure(figsize=(4.2 * len(fractions), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(fractions)))
    rows = bins[bins["dataset"] == dataset]
    for ax, fraction in zip(axes, fractions):
        ax.plot([0, 1], [0, 1], color="0.6", linewidth=1)
        at = rows[rows["fraction"].round(6) == fraction]
        for method in methods:
            part = at[at["method"] == method]
            if part.empty:
                continue
            pooled = part.groupby("bin").apply(
                lambda b: pd.Series({"confidence": np.average(b["confidence"], weights=b["share"]),
                                     "accuracy": np.average(b["bin_accuracy"], weights=b["share"])}),
                include_groups=False)
            ax.plot(pooled["confidence"], pooled["accuracy"], marker="o", color=method_color(method),
                    label=method_label(method))
        ax.set_title(f"{DATASET_TITLES.get(dataset, dataset)}, {100 * fraction:g} % pruned", fontsize=10)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def scores_by_epoch(history: pd.DataFrame, methods: list[str]) -> Figure:
    """What either checkpoint rule would keep: validation accuracy as trained and after pruning 90 % by epoch
    (mean over seeds), a row per score, a column per dataset, a line per method (at most six)."""
    datasets = [d for d in DATASET_TITLES if d in set(history["dataset"])]
    scores = [s for s in SCORE_TITLES if s in history]
    fig = Figure(figsize=(4.6 * len(datasets), 3.0 * len(scores) + 0.6))
    axes = np.atleast_2d(fig.subplots(len(scores), len(datasets), squeeze=False))
    for row, score in enumerate(scores):
        for col, dataset in enumerate(datasets):
            ax = axes[row, col]
            rows = history[history["dataset"] == dataset]
            for method in methods:
                curve = rows[rows["method"] == method].groupby("epoch")[score].mean()
                if len(curve):
                    ax.plot(curve.index, curve.values, color=method_color(method), label=method_label(method))
            ax.set_title(f"{DATASET_TITLES[dataset]}: {SCORE_TITLES[score]}", fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation accuracy")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
