"""Figures of the report: the prior, training curves, weight histograms, pruning curves, the compression frontier.

One figure style for the whole book, owned here: every figure is as wide as the book's text column at a 1300 px
window, its text at least 80 % of the body text's size as displayed there, at most `MAX_SERIES` labelled series
per panel (the rest split into further panels), one colour per method (`METHOD_COLORS`) and legends outside the
data. `book_figure` applies the style and refuses a figure that breaks it. Each function returns a matplotlib
Figure that pyplot does not track, so a notebook shows it once, where it is displayed.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable

import matplotlib
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from bayesprune.data.augment import random_affine
from bayesprune.model.bayes import GaussianPrior, ScaleMixturePrior
from bayesprune.evaluate.diagnostics import LOG_MU_EDGES, LOG_SIGMA_EDGES
from bayesprune.compress.prune import own_criteria
from bayesprune.report.formatting import DATASET_LABELS, display_value
from bayesprune.report.frontier import AS_TRAINED, SCHEDULE_LABELS, pareto_front
from bayesprune.report.reference import method_label
from bayesprune.report.tables import method_order, summarise


FIGURE_DPI = 90  # PNG pixels per inch: one figure pixel is one CSS pixel of the page
COLUMN_PX = 688  # an output image's width in the narrowest text column at a 1300 px window (CSS pixels); the
# book's stylesheet (book/_static/figures.css) stretches figures to wider columns, where their text only grows
BODY_PX = 16.0  # the body text's size there
MIN_TEXT_PX = 0.8 * BODY_PX  # the smallest text a figure may show, as displayed
COLUMN_INCHES = COLUMN_PX / FIGURE_DPI  # every figure's width
MAX_SERIES = 6  # labelled series per panel
TEXT_PT, SMALL_PT = 11.0, 10.5  # titles and labels; ticks and legends (10.5 pt at 90 dpi = 13.1 px)
STYLE = {"figure.dpi": FIGURE_DPI, "axes.grid": True, "grid.alpha": 0.3, "font.size": TEXT_PT,
         "axes.titlesize": TEXT_PT, "axes.labelsize": TEXT_PT, "figure.titlesize": TEXT_PT + 1,
         "xtick.labelsize": SMALL_PT, "ytick.labelsize": SMALL_PT, "legend.fontsize": SMALL_PT,
         "legend.title_fontsize": SMALL_PT}
LEGEND_ROW_INCHES = 0.3  # height of one row of a legend below the panels


class IllegibleFigure(ValueError):
    """A figure that breaks the book's figure style."""


def style_problems(fig: Figure) -> list[str]:
    """What in a figure breaks the book's style: a width other than the text column's, text displayed below
    `MIN_TEXT_PX`, more than `MAX_SERIES` labelled series in a panel."""
    problems = []
    if abs(fig.get_figwidth() - COLUMN_INCHES) > 0.01:
        problems.append(f"width {fig.get_figwidth():.2f} in, not the text column's {COLUMN_INCHES:.2f} in")
    fig.draw_without_rendering()
    scale = fig.dpi / 72 * min(1.0, COLUMN_PX / (fig.get_figwidth() * fig.dpi))  # points to displayed pixels
    small = sorted({f"{text.get_text()!r} at {text.get_fontsize() * scale:.1f} px"
                    for text in fig.findobj(Text) if text.get_visible() and text.get_text().strip()
                    and text.get_fontsize() * scale < MIN_TEXT_PX - 1e-6})
    problems += [f"text {item}, below {MIN_TEXT_PX:.1f} px" for item in small]
    for ax in fig.axes:
        labels = ax.get_legend_handles_labels()[1]
        if len(labels) > MAX_SERIES:
            problems.append(f"panel {ax.get_title()!r} holds {len(labels)} series, more than {MAX_SERIES}")
    return problems


def book_figure(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw a figure in the book's style (`STYLE`) and refuse one that breaks it (`style_problems`)."""
    @functools.wraps(draw)
    def styled(*args, **kwargs) -> Figure:
        with matplotlib.rc_context(STYLE):
            fig = draw(*args, **kwargs)
            for ax in fig.axes:
                ax.tick_params(labelsize=SMALL_PT)
            problems = style_problems(fig)
        if problems:
            raise IllegibleFigure(f"{draw.__name__}: " + "; ".join(problems))
        return fig
    return styled


def panel_grid(count: int, panel_height: float, columns: int = 2, legend_rows: int = 0,
               **subplots) -> tuple[Figure, np.ndarray]:
    """A figure as wide as the text column holding `count` panels, at most `columns` to a row (cells left over
    hidden), with room for `legend_rows` rows of a legend below; the panels as a flat array."""
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    fig = Figure(figsize=(COLUMN_INCHES, panel_height * rows + LEGEND_ROW_INCHES * legend_rows), dpi=FIGURE_DPI)
    axes = fig.subplots(rows, columns, squeeze=False, **subplots).flatten()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def legend_columns(labels: list[str]) -> int:
    """How many legend entries fit side by side in the text column."""
    longest = max((len(label) for label in labels), default=1)
    return max(1, min(len(labels), 3 if longest <= 24 else 2 if longest <= 40 else 1))


def legend_rows(labels: list[str]) -> int:
    """Rows a legend below the panels needs."""
    return -(-len(labels) // legend_columns(labels)) if labels else 0


def legend_below(fig: Figure, handles: list, labels: list[str]) -> None:
    """One legend for the whole figure under its panels, and the panels laid out above it."""
    rows = legend_rows(labels)
    if rows:
        fig.legend(handles, labels, loc="lower center", ncol=legend_columns(labels), frameon=False)
    fig.tight_layout(rect=(0, min(0.5, (rows * LEGEND_ROW_INCHES + 0.05 * bool(rows)) / fig.get_figheight()), 1, 1))


def unique_handles(axes) -> tuple[list, list[str]]:
    """The labelled artists of several panels, each label once, in order of first appearance."""
    found: dict[str, object] = {}
    for ax in np.atleast_1d(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            found.setdefault(label, handle)
    return list(found.values()), list(found)


def in_groups(items: list, size: int = MAX_SERIES) -> list[list]:
    """Items split into as few groups of at most `size` as possible, of balanced lengths."""
    parts = max(1, -(-len(items) // size))
    share = -(-len(items) // parts)
    return [items[i:i + share] for i in range(0, len(items), share)] or [[]]


@book_figure
def prior_figure(pi: float, sigma1: float, sigma2: float, zooms: tuple[float, ...] = (1.0, 20.0, 400.0)) -> Figure:
    """The two Gaussian components and the scale mixture at several vertical zoom levels."""
    w = torch.linspace(-3 * sigma1, 3 * sigma1, 4001, dtype=torch.float64)
    curves = {
        f"N(0, {sigma1:.3g}²) weighted by π": pi * GaussianPrior(sigma1).log_prob(w).exp(),
        f"N(0, {sigma2:.3g}²) weighted by 1-π": (1 - pi) * GaussianPrior(sigma2).log_prob(w).exp(),
        "mixture": ScaleMixturePrior(pi, sigma1, sigma2).log_prob(w).exp(),
    }
    fig, axes = panel_grid(len(zooms), 2.8, columns=len(zooms), legend_rows=legend_rows(list(curves)))
    peak = float(curves["mixture"].max())
    for ax, zoom in zip(axes, zooms):
        for (label, density), style in zip(curves.items(), ("--", ":", "-")):
            ax.plot(w.numpy(), density.numpy(), style, label=label)
        ax.set_ylim(0, peak / zoom)
        ax.set_title(f"density up to {peak / zoom:.3g}")
        ax.set_xlabel("weight w")
        ax.locator_params(nbins=4)
    legend_below(fig, *axes[0].get_legend_handles_labels())
    return fig


@book_figure
def loss_curve(history: pd.DataFrame) -> Figure:
    """Training loss and test accuracy of one run by epoch."""
    fig, (left, right) = panel_grid(2, 3.2)
    left.plot(history["epoch"], history["loss"], marker="o", label="loss")
    left.plot(history["epoch"], history["nll"], marker=".", label="NLL")
    left.set_xlabel("epoch")
    left.set_ylabel("per example")
    left.set_yscale("log")
    left.legend()
    right.plot(history["epoch"], history["train_acc"], marker=".", label="training")
    right.plot(history["epoch"], history["test_acc"], marker="o", label="test")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.legend()
    fig.tight_layout()
    return fig


COLUMN_LABELS = {"nll": "training NLL per example", "loss": "training loss per example", "test_acc": "test accuracy",
                 "train_acc": "training accuracy", "val_acc": "validation accuracy"}
PROTOCOL_LINES = {"corrected": "-", "study": "--"}


@book_figure
def training_curves(history: pd.DataFrame, column: str = "nll") -> Figure:
    """A column of the history by epoch (mean over seeds), a row per protocol and a column per dataset, a colour
    per method; losses on a log axis, accuracies on a linear one."""
    datasets = [d for d in DATASET_LABELS if d in set(history["dataset"])]
    protocols = sorted(history["protocol"].unique())
    labels = [method_label(m) for m in method_order(history["method"].unique())]
    fig, axes = panel_grid(len(protocols) * len(datasets), 3.0, columns=len(datasets), legend_rows=legend_rows(labels))
    for ax, (protocol, dataset) in zip(axes, [(p, d) for p in protocols for d in datasets]):
        rows = history[(history["dataset"] == dataset) & (history["protocol"] == protocol)]
        for method in method_order(rows["method"].unique()):
            curve = rows[rows["method"] == method].groupby("epoch")[column].mean()
            if len(curve):
                ax.plot(curve.index, curve.values, color=method_color(method), label=method_label(method))
        ax.set_title(DATASET_LABELS[dataset] + (f", {protocol}" if len(protocols) > 1 else ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel(COLUMN_LABELS.get(column, column))
        if column in ("nll", "loss"):
            ax.set_yscale("log")
    legend_below(fig, *unique_handles(axes))
    return fig


@book_figure
def weight_histograms(histogram: pd.DataFrame, dataset: str, protocol: str = "") -> Figure:
    """The study's Figures 8/9: weight distributions of every model of one dataset (seeds pooled)."""
    rows = histogram[histogram["dataset"] == dataset]
    methods = method_order(rows["method"].unique())
    fig, axes = panel_grid(len(methods), 2.2, columns=3, sharex=True)
    for ax, method in zip(axes, methods):
        bins = rows[rows["method"] == method].groupby(["bin_left", "bin_right"])["count"].sum().reset_index()
        ax.stairs(bins["count"], np.append(bins["bin_left"].values, bins["bin_right"].values[-1]), fill=True)
        ax.set_title(method_label(method))
        ax.set_yscale("log")
    fig.suptitle(DATASET_LABELS.get(dataset, dataset) + (f", {protocol} protocol" if protocol else ""))
    fig.supxlabel("weight (BBB: posterior mean)")
    fig.supylabel("count")
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
# BBB in a vivid orange that no other method's hue comes near (the prior-trained baselines are purples, its
# prior-matched MAP estimate black), so the method under test stands out in every figure
METHOD_COLORS = {"sgd": "#332288", "dropout0.5": "#88CCEE", "dropout0.75": "#44AA99", "dropout0.9": "#999933",
                 "bbb": "#EE7733", "sparsevd": "#117733", "sgd-l2": "#AA4499", "dropout0.5-l2": "#DDCC77",
                 "sgd-l1": "#882255", "dropout0.5-l1": "#777777", "sgd-mixture": "#000000", "bcgnj": "#0077BB"}
CRITERION_LINES = {"magnitude": "-", "snr": "--", "snr_rho": ":"}


def method_color(method: str) -> str:
    """One colour per method, the same in every figure of the book."""
    return METHOD_COLORS.get(method, "#BBBBBB")


@book_figure
def pruning_curves(pruning: pd.DataFrame, column: str = "accuracy_mean") -> Figure:
    """Accuracy against pruned fraction (mean +- std over seeds), a column per dataset and a row per protocol (and
    per group of at most `MAX_SERIES` lines where more share one): a colour per method, a line style per criterion
    (solid: magnitude, dashed: SNR, dotted: the study's |mu|/rho)."""
    summary = summarise(pruning, column)
    datasets = [d for d in DATASET_LABELS if d in set(summary["dataset"])]
    protocols = sorted(summary["protocol"].unique())
    panels = []  # (protocol, its series group, the group's number among the protocol's)
    for protocol in protocols:
        rows = summary[summary["protocol"] == protocol]
        series = [(m, c) for m in method_order(rows["method"].unique())
                  for c in sorted(rows.loc[rows["method"] == m, "criterion"].unique())]
        groups = in_groups(series)
        panels += [(protocol, group, index if len(groups) > 1 else None) for index, group in enumerate(groups)]
    cells = [(panel, dataset) for panel in panels for dataset in datasets
             if ((summary["protocol"] == panel[0]) & (summary["dataset"] == dataset)).any()]
    labels = list(dict.fromkeys(f"{method_label(m)} ({c})" for _, series, _ in panels for m, c in series))
    fig, axes = panel_grid(len(cells), 3.0, columns=len(datasets), legend_rows=legend_rows(labels))
    for ax, ((protocol, series, part), dataset) in zip(axes, cells):
        rows = summary[(summary["dataset"] == dataset) & (summary["protocol"] == protocol)]
        for method, criterion in series:
            line = rows[(rows["method"] == method) & (rows["criterion"] == criterion)]
            if len(line):
                ax.errorbar(line["fraction"], line["mean"], yerr=line["std"].fillna(0), marker="o", capsize=2,
                            color=method_color(method), linestyle=CRITERION_LINES.get(criterion, "-."),
                            label=f"{method_label(method)} ({criterion})")
        _fraction_axis(ax)
        title = DATASET_LABELS[dataset] + (f", {protocol}" if len(protocols) > 1 else "")
        ax.set_title(title + (f" ({part + 1})" if part is not None else ""))
    legend_below(fig, *unique_handles(axes))
    return fig


@book_figure
def histogram_of_run(histogram: pd.DataFrame) -> Figure:
    """Weight histogram of one run."""
    fig, (ax,) = panel_grid(1, 3.0)
    edges = np.append(histogram["bin_left"].values, histogram["bin_right"].values[-1])
    ax.stairs(histogram["count"], edges, fill=True)
    ax.set_yscale("log")
    ax.set_xlabel("weight (BBB: posterior mean)")
    ax.set_ylabel("count")
    fig.tight_layout()
    return fig


def report_style() -> None:
    """Figure and table defaults shared by every notebook of the report; figures display as PNG at twice their
    pixel size (sharp where the book's stylesheet stretches them to a wider text column) and are not cropped, so
    their text keeps the size `style_problems` checks."""
    pd.set_option("display.precision", 4)
    matplotlib.rcParams.update(STYLE)
    from IPython import get_ipython

    if get_ipython() is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina", bbox_inches=None)


@book_figure
def kl_weight_figure(batches: int = 600, shown: int = 12) -> Figure:
    """Complexity-cost weight of the first minibatches of an epoch: Blundell's, uniform, and the study's code."""
    from bayesprune.model.elbo import KL_WEIGHTINGS

    fig, (ax,) = panel_grid(1, 3.4)
    for name, weights in KL_WEIGHTINGS.items():
        values = weights(batches)
        ax.plot(range(1, shown + 1), values[:shown], marker="o", label=f"{name} (sum {values.sum():.2f})")
    ax.set_yscale("log")
    ax.set_xlabel("minibatch of the epoch")
    ax.set_ylabel("weight of the complexity cost")
    ax.legend()
    fig.tight_layout()
    return fig


@book_figure
def spread_figure(frame: pd.DataFrame, stat: str = "std") -> Figure:
    """Accuracy kept at 90 % pruned against a spread statistic of the weights, one point per run: a column per
    dataset, a row per protocol."""
    datasets = list(frame["dataset"].unique())
    protocols = [p for p in ("corrected", "study") if p in set(frame["protocol"])]
    fig, axes = panel_grid(len(datasets) * len(protocols), 3.0, columns=len(datasets))
    for ax, (protocol, dataset) in zip(axes, [(p, d) for p in protocols for d in datasets]):
        rows = frame[(frame["dataset"] == dataset) & (frame["protocol"] == protocol)]
        for method in method_order(rows["method"].unique()):
            group = rows[rows["method"] == method]
            ax.scatter(group[stat], group["kept"], color=method_color(method), label=method_label(method))
        ax.set_xlabel(f"weight {stat}")
        ax.set_ylabel("accuracy kept, 90 % pruned")
        ax.set_title(f"{DATASET_LABELS.get(dataset, dataset)}, {protocol}")
    legend_below(fig, *unique_handles(axes))
    return fig


@book_figure
def augmentation_figure(shown: int = 6, seed: int = 0) -> Figure:
    """A test glyph and its randomly rotated and scaled copies, as the study's Fashion-MNIST notebooks saw them."""
    glyph = torch.zeros(28, 28)
    glyph[5:23, 8:12] = 1.0
    glyph[5:9, 8:21] = 1.0
    glyph[12:16, 8:18] = 1.0
    images = glyph.flatten().repeat(shown, 1)
    out = random_affine(images, torch.Generator().manual_seed(seed)).view(shown, 28, 28)
    fig, axes = panel_grid(shown + 1, 1.4, columns=shown + 1)
    for ax, image, title in zip(axes, [glyph, *out], ["original", *[f"copy {i + 1}" for i in range(shown)]]):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return fig


@book_figure
def step_time_figure(timings: pd.DataFrame) -> Figure:
    """Milliseconds per training step of every benched model, one panel per machine (stacked), SGD marked."""
    machines = list(dict.fromkeys(timings.index.get_level_values("machine")))
    bars = max(len(timings.loc[machine]) for machine in machines)
    fig, axes = panel_grid(len(machines), 0.3 * bars + 1.2, columns=1)
    for ax, machine in zip(axes, machines):
        rows = timings.loc[machine]["step_ms"].sort_values()
        ax.barh(rows.index, rows.values, color=["C1" if name.startswith(("bbb", "blitz")) else "C0" for name in rows.index])
        if "sgd" in rows.index:
            ax.axvline(rows["sgd"], color="k", lw=0.8, ls=":")
            for y, value in enumerate(rows.values):
                ax.text(value, y, f" {value / rows['sgd']:.1f}x", va="center", fontsize=SMALL_PT)
        ax.set_xscale("log")
        ax.set_xlabel("ms per training step (batch 100, log scale)")
        ax.set_title(machine)
        ax.set_xlim(rows.min() / 1.5, rows.max() * 3)
    fig.tight_layout()
    return fig


@book_figure
def process_speed_figure(report: dict) -> Figure:
    """The SGD step of every fresh process (`performance.processes`), round by round, a line per thread setting: a
    setting's own slow processes stand out alone, the machine's slow rounds in every line at once."""
    runs = pd.DataFrame(report["runs"])
    labels = list(dict.fromkeys(runs["setting"]))
    fig, axes = panel_grid(1, 3.2, columns=1, legend_rows=legend_rows(labels))
    for setting in labels:
        rows = runs[runs["setting"] == setting]
        axes[0].plot(rows["round"], rows["step_ms"], marker="o", label=setting)
    axes[0].set_xlabel("round (one fresh process per setting, in turn)")
    axes[0].set_ylabel("ms per SGD step")
    axes[0].set_ylim(bottom=0)
    legend_below(fig, *unique_handles(axes))
    return fig


CRITERION_STYLES = {"snr": (CRITERION_LINES["snr"], "SNR |mu|/sigma"), "magnitude": (CRITERION_LINES["magnitude"], "|mu|")}


@book_figure
def pruning_by_variant(pruning: pd.DataFrame, variants: list[str]) -> Figure:
    """One small panel per regime-study step: test accuracy pruned by SNR (dashed) and by |mu| (solid), the book's
    one line-style rule (`CRITERION_LINES`)."""
    fig, axes = panel_grid(len(variants), 2.8, legend_rows=1)
    for ax, variant in zip(axes, variants):
        rows = pruning[pruning["variant"] == variant]
        for criterion, (style, label) in CRITERION_STYLES.items():
            line = rows[rows["criterion"] == criterion].groupby("fraction")["accuracy_mean"].mean()
            ax.plot(line.index, line.values, style, marker="o", color="C0", label=label)
        _fraction_axis(ax)
        ax.set_title(textwrap.fill(display_value("variant", variant), 32))
    legend_below(fig, *unique_handles(axes))
    return fig


def group_rows(groups: dict[str, list[str]], panels: int, panel_height: float,
               labels: list[str]) -> tuple[Figure, list[tuple[np.ndarray, Axes]]]:
    """A figure with one row of `panels` panels per group of series and, under each row, a space for that group's
    legend (sized for `labels`, the longest group's series); per group its panels and its legend's axes."""
    height = LEGEND_ROW_INCHES * (legend_rows(labels) + 1)
    fig = Figure(figsize=(COLUMN_INCHES, len(groups) * (panel_height + height)), dpi=FIGURE_DPI)
    grid = fig.add_gridspec(2 * len(groups), panels, height_ratios=[panel_height, height] * len(groups))
    rows = []
    for index in range(len(groups)):
        axes = np.array([fig.add_subplot(grid[2 * index, column]) for column in range(panels)])
        legend = fig.add_subplot(grid[2 * index + 1, :])
        legend.axis("off")
        rows.append((axes, legend))
    return fig, rows


def group_legend(legend: Axes, panel: Axes, title: str) -> None:
    """The legend of one group's series, titled by the group, in the space under its row."""
    handles, labels = panel.get_legend_handles_labels()
    legend.legend(handles, labels, loc="center", ncol=legend_columns(labels), frameon=False,
                  title=textwrap.fill(title, 70), fontsize=SMALL_PT, title_fontsize=SMALL_PT)


@book_figure
def posterior_movement(history: pd.DataFrame, groups: dict[str, list[str]], by: str = "variant") -> Figure:
    """Per group of runs (values of column `by`, seeds averaged): the share of sigmas moved by more than 2x
    and the median sigma, by epoch; each group's legend under its row."""
    fig, rows = group_rows(groups, 2, 2.6, max(([display_value(by, v) for v in g] for g in groups.values()), key=len))
    for (title, variants), ((moved, median), legend) in zip(groups.items(), rows):
        for index, variant in enumerate(variants):
            run = history[history[by] == variant].groupby("epoch")[["sigma_moved", "sigma_q50"]].mean()
            moved.plot(run.index, run["sigma_moved"], marker=".", color=f"C{index}", label=display_value(by, variant))
            median.plot(run.index, run["sigma_q50"], marker=".", color=f"C{index}", label=display_value(by, variant))
        moved.set_ylabel("sigmas moved > 2x")
        moved.set_ylim(-0.02, 1.02)
        median.set_ylabel("median sigma")
        median.set_yscale("log")
        for ax in (moved, median):
            ax.set_xlabel("epoch")
        group_legend(legend, moved, title)
    fig.tight_layout()
    return fig


@book_figure
def snr_density(snr: pd.DataFrame, groups: dict[str, list[str]], by: str = "variant") -> Figure:
    """Blundell et al.'s Figure 4 per group of runs (values of column `by`, seeds pooled): the density of the
    weights' signal-to-noise ratio in dB; each group's legend under its panel."""
    fig, rows = group_rows(groups, 1, 2.6, max(([display_value(by, v) for v in g] for g in groups.values()), key=len))
    for (title, variants), ((ax,), legend) in zip(groups.items(), rows):
        for index, variant in enumerate(variants):
            bins = snr[snr[by] == variant].groupby(["bin_left", "bin_right"])["count"].sum().reset_index()
            width = bins["bin_right"] - bins["bin_left"]
            ax.stairs(bins["count"] / (bins["count"].sum() * width),
                      np.append(bins["bin_left"].values, bins["bin_right"].values[-1]),
                      color=f"C{index}", label=display_value(by, variant))
        ax.set_xlabel("SNR |mu|/sigma (dB)")
        ax.set_ylabel("density")
        group_legend(legend, ax, title)
    fig.tight_layout()
    return fig


@book_figure
def mu_sigma_maps(histogram: pd.DataFrame, variants: list[str], by: str = "variant") -> Figure:
    """Where the weights sit in (|mu|, sigma), one panel per value of column `by` (seeds pooled); below the
    diagonal |mu| > sigma (SNR > 0 dB)."""
    fig, axes = panel_grid(len(variants), 3.2)
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
        ax.set_title(textwrap.fill(display_value(by, variant), 32))
        fig.colorbar(mesh, ax=ax, label="log10 weights")
    fig.tight_layout()
    return fig


def _ratio_axis(ax, label: str = "compression ratio (all parameters / nonzero ones)") -> None:
    """x: compression ratio on a log axis, labelled 1x, 10x, 100x."""
    ax.set_xscale("log")
    ax.set_xticks([1, 2, 5, 10, 20, 50, 100, 200])
    ax.set_xticklabels(["1x", "2x", "5x", "10x", "20x", "50x", "100x", "200x"])
    ax.set_xlabel(label)


WEIGHT_MAGNITUDES = {"bbb": "|mu|", "sparsevd": "|theta|"}  # what magnitude pruning ranks in a method with noise
ERROR_TICKS = (1, 1.5, 2, 3, 5, 10, 20, 30, 50, 90)  # test error (%) marked on a log axis: those within its limits


@book_figure
def frontier_figure(summary: pd.DataFrame, anchors: pd.DataFrame, limits: tuple[float, float] = (1.0, 20.0),
                    network: str = "LeNet-300-100", contrast: bool = False) -> Figure:
    """Test error against compression ratio, a panel per pruning schedule (and per group of methods where more
    than fit one): each method's own criterion (mean over seeds, a band of +- 1 sd), each network as trained
    (sparse VD's, BC-GNJ's) as a star, the published points in black and the Pareto front of all our points in
    grey; with `contrast`, only the methods with weight noise (BBB, sparse VD), each by its own criterion and
    dotted by its magnitude (|mu|, |theta|)."""
    schedules = [s for s in SCHEDULE_LABELS if s in set(summary["schedule"])]
    front = pareto_front(summary)
    if contrast:
        summary = summary[summary["method"].isin(list(WEIGHT_MAGNITUDES))]
    shown = [(m, c) for (m, c) in summary.groupby(["method", "criterion"], sort=False).groups
             if contrast or c in AS_TRAINED or c in own_criteria(m)[:1]]  # as frontier.best_ratios reads
    groups = in_groups(shown, MAX_SERIES - 1)  # the Pareto front is in every panel
    panels = [(schedule, group) for schedule in schedules for group in groups]
    names = [label.split(" (")[0] for label in anchors.index]
    key = textwrap.wrap("Published: " + "; ".join(f"{i + 1} {name}" for i, name in enumerate(names)), 95) if names else []
    fig, axes = panel_grid(len(panels), 3.0, columns=1, legend_rows=legend_rows([""] * (len(shown) + 1)) + len(key))
    for ax, (schedule, group) in zip(axes, panels):
        rows = summary[summary["schedule"] == schedule]
        for method, criterion in group:
            line = rows[(rows["method"] == method) & (rows["criterion"] == criterion)].sort_values("compression")
            if criterion in AS_TRAINED:
                ax.plot(line["compression"], line["error"], "*", markersize=13, color=method_color(method),
                        markeredgecolor="black", label=f"{method_label(method)} {AS_TRAINED[criterion]}")
                continue
            own = criterion in own_criteria(method)[:1]
            ranked = WEIGHT_MAGNITUDES.get(method, criterion) if criterion == "magnitude" else criterion
            ax.plot(line["compression"], line["error"], marker="o", markersize=3, color=method_color(method),
                    linestyle="-" if own else ":", label=method_label(method) + ("" if own else f" by {ranked}"))
            if own:
                sd = line["error_sd"].fillna(0)
                ax.fill_between(line["compression"], line["error"] - sd, line["error"] + sd, alpha=0.15,
                                color=method_color(method), linewidth=0)
        ax.step(front["compression"], front["error"], where="pre", color="grey", linestyle="--", linewidth=1,
                label="Pareto front (all schedules)")
        for index, (_, point) in enumerate(anchors.iterrows()):
            ax.plot(point["compression"], point["error"], "kD", markersize=4)
            ax.annotate(str(index + 1), (point["compression"], point["error"]), xytext=(3, -12 if index % 2 else 3),
                        textcoords="offset points")
        _ratio_axis(ax)
        ax.set_yscale("log")
        ticks = [t for t in ERROR_TICKS if limits[0] <= t <= limits[1]]
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # the marked ticks only, no 6x10^1 between them
        ax.set_ylim(*limits)  # after the ticks, which would otherwise widen it
        ax.set_title(SCHEDULE_LABELS[schedule])
        ax.set_ylabel(f"test error (%), {network}")
    if key:
        fig.text(0.02, 0.01, "\n".join(key), fontsize=SMALL_PT, va="bottom")
    handles, labels = unique_handles(axes)
    fig.legend(handles, labels, loc="lower center", ncol=legend_columns(labels), frameon=False,
               bbox_to_anchor=(0.5, (len(key) * LEGEND_ROW_INCHES + 0.05) / fig.get_figheight()))
    fig.tight_layout(rect=(0, ((legend_rows(labels) + len(key)) * LEGEND_ROW_INCHES + 0.1) / fig.get_figheight(), 1, 1))
    return fig


@book_figure
def storage_figure(points: pd.DataFrame) -> Figure:
    """Stored size of the pruned network against its compression ratio: dense, CSR and bitmask storage in float32
    and float16 (the nonzero pattern of every pruned network of the frontier, mean per fraction)."""
    sizes = points.groupby("fraction")[[c for c in points if c.startswith("bytes_")] + ["compression"]].mean()
    fig, (ax,) = panel_grid(1, 3.8)
    for column, style in (("bytes_dense_float32", "k-"), ("bytes_dense_float16", "k--"), ("bytes_csr_float32", "C0-"),
                          ("bytes_csr_float16", "C0--"), ("bytes_bitmask_float32", "C1-"), ("bytes_bitmask_float16", "C1--")):
        label = column.removeprefix("bytes_").replace("_", ", ")
        ax.plot(sizes["compression"], sizes[column] / 1024, style, marker="o", markersize=3, label=label)
    _ratio_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel("stored size (KiB)")
    ax.legend()
    fig.tight_layout()
    return fig


@book_figure
def latency_figure(latency: pd.DataFrame) -> Figure:
    """Median CPU time of one forward pass, dense against CSR weight matrices and against the smaller dense network
    that removing units leaves (where measured), per sparsity; a panel per batch size."""
    batches = sorted(latency["batch"].unique())
    fig, axes = panel_grid(len(batches), 3.4)
    for ax, batch in zip(axes, batches):
        rows = latency[latency["batch"] == batch].sort_values("sparsity")
        ratio = 1 / (1 - rows["sparsity"])
        ax.plot(ratio, rows["dense_ms"], "k-", label="dense")
        ax.plot(ratio, rows["csr_ms"], "C0-o", markersize=3, label="CSR (torch.sparse)")
        if "units_ms" in rows:
            ax.plot(ratio, rows["units_ms"], "C1-s", markersize=3, label="smaller dense (units removed)")
        _ratio_axis(ax, "compression ratio (1 / (1 - sparsity))")
        ax.set_yscale("log")
        ax.set_ylabel("ms per forward pass")
        ax.set_title(f"batch {batch}, {rows['network'].iloc[0]}")
        ax.legend()
    fig.tight_layout()
    return fig


SCORE_TITLES = {"val_acc": "as trained", "val_acc_pruned": "pruned 90 %"}


@book_figure
def _scale_panels(curves: pd.DataFrame, scores: list[str], titles: dict[str, str], panel_height: float,
                  xlabel: str, dashed: Callable[[str], bool] = lambda method: False) -> Figure:
    """Validation accuracy against the log of each method's prior scale: a row per score (its title in `titles`),
    a column per dataset, a line per method (dashed where `dashed` says so)."""
    datasets = [d for d in DATASET_LABELS if d in set(curves["dataset"])]
    methods = method_order(curves["method"].unique())
    fig, flat = panel_grid(len(scores) * len(datasets), panel_height, columns=len(datasets),
                           legend_rows=legend_rows([method_label(m) for m in methods]))
    axes = flat.reshape(len(scores), len(datasets))
    for row, score in enumerate(scores):
        for col, dataset in enumerate(datasets):
            ax = axes[row, col]
            part = curves[(curves["score"] == score) & (curves["dataset"] == dataset)]
            for method in method_order(part["method"].unique()):
                line = part[part["method"] == method].sort_values("prior scale")
                ax.plot(line["prior scale"], line["validation accuracy"], marker="o", color=method_color(method),
                        linestyle="--" if dashed(method) else "-", label=method_label(method))
            ax.set_title(f"{DATASET_LABELS[dataset]}, {titles[score]}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("validation accuracy")
    legend_below(fig, *unique_handles(flat))
    return fig


@book_figure
def strength_figure(curves: pd.DataFrame) -> Figure:
    """The penalised baselines' best validation accuracy against the log of their prior's scale (strong on the
    left, weak on the right): a row per score (as trained, pruned 90 %), a column per dataset, a line per method,
    L1 dashed."""
    scores = [s for s in SCORE_TITLES if s in set(curves["score"])]
    return _scale_panels(curves, scores, SCORE_TITLES, 3.0, "log prior scale (sigma or b)",
                         dashed=lambda method: method.endswith("-l1"))


@book_figure
def target_scale_figure(curves: pd.DataFrame) -> Figure:
    """The target search on one page: each method with a prior, its best validation accuracy against the log of its
    prior's scale (strong on the left), a row per score (as trained, then pruned to each target), a column per
    dataset."""
    scores = list(dict.fromkeys(curves["score"]))
    return _scale_panels(curves, scores, {score: score for score in scores}, 2.4, "log prior scale")


@book_figure
def uncertainty_curves(summary: pd.DataFrame, metrics: dict[str, str], methods: list[str]) -> Figure:
    """Each metric (mean over seeds, band: +- 1 sd) against the fraction pruned: a row per metric, a column per
    dataset, a line per method (at most six)."""
    datasets = [d for d in DATASET_LABELS if d in set(summary.index.get_level_values("dataset"))]
    labels = [method_label(m) for m in methods]
    fig, flat = panel_grid(len(metrics) * len(datasets), 2.7, columns=len(datasets), legend_rows=legend_rows(labels))
    axes = flat.reshape(len(metrics), len(datasets))
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
            ax.set_title(DATASET_LABELS[dataset])
    legend_below(fig, *unique_handles(flat))
    return fig


@book_figure
def reliability_diagrams(bins: pd.DataFrame, dataset: str, methods: list[str],
                         fractions: tuple[float, ...] = (0.0, 0.9, 0.98)) -> Figure:
    """Accuracy against confidence per confidence bin (pooled over seeds), a panel per pruned fraction, a line per
    method; the diagonal is perfect calibration."""
    labels = [method_label(m) for m in methods]
    fig, axes = panel_grid(len(fractions), 2.9, columns=len(fractions), legend_rows=legend_rows(labels))
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
        ax.set_title(f"{100 * fraction:g} % pruned")
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xticks([0, 0.5, 1])
    fig.suptitle(DATASET_LABELS.get(dataset, dataset))
    legend_below(fig, *unique_handles(axes))
    return fig


@book_figure
def scores_by_epoch(history: pd.DataFrame, methods: list[str]) -> Figure:
    """What either checkpoint rule would keep: validation accuracy as trained and after pruning 90 % by epoch
    (mean over seeds), a row per score, a column per dataset, a line per method (at most six)."""
    datasets = [d for d in DATASET_LABELS if d in set(history["dataset"])]
    scores = [s for s in SCORE_TITLES if s in history]
    labels = [method_label(m) for m in methods]
    fig, flat = panel_grid(len(scores) * len(datasets), 2.9, columns=len(datasets), legend_rows=legend_rows(labels))
    axes = flat.reshape(len(scores), len(datasets))
    for row, score in enumerate(scores):
        for col, dataset in enumerate(datasets):
            ax = axes[row, col]
            rows = history[history["dataset"] == dataset]
            for method in methods:
                curve = rows[rows["method"] == method].groupby("epoch")[score].mean()
                if len(curve):
                    ax.plot(curve.index, curve.values, color=method_color(method), label=method_label(method))
            ax.set_title(f"{DATASET_LABELS[dataset]}, {SCORE_TITLES[score]}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation accuracy")
    legend_below(fig, *unique_handles(flat))
    return fig


@book_figure
def units_over_training(units: pd.DataFrame) -> Figure:
    """The share of each layer's units BC-GNJ keeps by epoch (mean over seeds), a panel per dataset and network,
    a line per layer (`structured.units_by_epoch`)."""
    panels = list(dict.fromkeys(units.index.droplevel("epoch")))
    layers = list(units.columns)
    fig, axes = panel_grid(len(panels), 2.9, legend_rows=legend_rows(layers))
    for ax, (dataset, network) in zip(axes, panels):
        at = (units.index.get_level_values("dataset") == dataset) & (units.index.get_level_values("network") == network)
        part = units[at].droplevel(["dataset", "network"])
        for layer, style in zip(layers, ("-", "--", ":", "-.")):
            ax.plot(part.index, 100 * part[layer] / part[layer].iloc[0], style, color="0.2", label=layer)
        ax.set_title(f"{DATASET_LABELS.get(dataset, dataset)}, {network}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("units kept (%)")
        ax.set_ylim(0, 105)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    legend_below(fig, *unique_handles(axes))
    return fig


@book_figure
def structured_figure(sweep: pd.DataFrame) -> Figure:
    """Test error against compression ratio for BC-GNJ, a panel per dataset and network, a line per way of
    pruning (mean over seeds, band: +- 1 sd), the network as trained as a star (`structured.structured_sweep`)."""
    panels = list(dict.fromkeys(sweep.index.droplevel("pruned by")))
    ways = [w for w in dict.fromkeys(sweep.index.get_level_values("pruned by")) if not w.startswith("as trained")]
    fig, axes = panel_grid(len(panels), 3.0, legend_rows=legend_rows(ways + ["as trained"]))
    for ax, (dataset, network) in zip(axes, panels):
        at = (sweep.index.get_level_values("dataset") == dataset) & (sweep.index.get_level_values("network") == network)
        part = sweep[at].droplevel(["dataset", "network"])
        for way, style in zip(ways, ("-", "--")):
            line = part.loc[[way]]
            ax.plot(line["compression ratio"], line["test error (%)"], style, marker="o", color="0.2", label=way)
            sd = line["sd"].fillna(0)
            ax.fill_between(line["compression ratio"], line["test error (%)"] - sd, line["test error (%)"] + sd,
                            color="0.2", alpha=0.12)
        trained = part[part.index.str.startswith("as trained")]
        ax.plot(trained["compression ratio"], trained["test error (%)"], "*", markersize=14, color=METHOD_COLORS["bcgnj"],
                label="as trained")
        _ratio_axis(ax, "compression ratio")
        ax.set_xlim(0.8, max(200.0, 1.2 * part["compression ratio"].max()))
        ax.set_xticks([1, 10, 100])
        ax.set_xticklabels(["1x", "10x", "100x"])
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_ylabel("test error (%)")
        ax.set_title(f"{DATASET_LABELS.get(dataset, dataset)}, {network}")
    legend_below(fig, *unique_handles(axes))
    return fig


PREDICTIVE_MARKERS = {"as deployed": "o", "Monte Carlo": "D", "temperature-scaled": "s",
                      "Monte Carlo, temperature-scaled": "P", "Laplace, last layer": "^", "Laplace, diagonal": "v",
                      "ensemble of 5": "*"}


@book_figure
def cheap_posterior_figure(rows: pd.DataFrame) -> Figure:
    """Entropy AUROC against the other dataset (mean over seeds) against what the predictive cost (training and
    post-hoc seconds, one log scale for every panel): a column per dataset, a row per sparsity a cheap posterior was
    fitted at, a colour per method and a marker per predictive."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from bayesprune.report.cheap_posteriors import CHEAP, CLAIM_SCORE, SPARSITY_LABELS
    from bayesprune.report.formatting import short_seconds

    rows = rows[rows["fraction"].isin(set(rows.loc[rows["predictive"].isin(CHEAP), "fraction"]))]
    datasets = [d for d in DATASET_LABELS if d in set(rows["dataset"])]
    fractions = sorted(set(rows["fraction"]))
    methods = [m for m in method_order(sorted(set(rows["method"])))]
    predictives = [p for p in PREDICTIVE_MARKERS if p in set(rows["predictive"])]
    handles = ([Line2D([], [], color=method_color(m), marker="o", linestyle="") for m in methods]
               + [Line2D([], [], color="0.3", marker=PREDICTIVE_MARKERS[p], linestyle="", fillstyle="none")
                  for p in predictives])
    labels = [method_label(m) for m in methods] + predictives
    fig, flat = panel_grid(len(fractions) * len(datasets), 2.6, columns=len(datasets), legend_rows=legend_rows(labels))
    axes = flat.reshape(len(fractions), len(datasets))
    means = rows.assign(cost=rows["train_seconds"] + rows["posthoc_seconds"]).groupby(
        ["dataset", "fraction", "method", "predictive"])[["cost", CLAIM_SCORE]].mean()
    for (dataset, fraction, method, predictive), point in means.iterrows():
        ax = axes[fractions.index(fraction), datasets.index(dataset)]
        ax.plot(point["cost"], point[CLAIM_SCORE], marker=PREDICTIVE_MARKERS[predictive], color=method_color(method),
                markersize=9 if predictive == "ensemble of 5" else 6, linestyle="")
    span = (means["cost"].min() / 1.5, means["cost"].max() * 1.5)
    for row, fraction in enumerate(fractions):
        for col, dataset in enumerate(datasets):
            ax = axes[row, col]
            ax.set_xscale("log")
            ax.set_xlim(*span)
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: short_seconds(value)))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{DATASET_LABELS[dataset]}, {SPARSITY_LABELS.get(fraction, f'{100 * fraction:g} %')}")
            ax.set_xlabel("cost (s: training + post-hoc)")
            ax.set_ylabel("AUROC, other data")
    legend_below(fig, handles, labels)
    return fig


@book_figure
def target_accuracy_figure(judged: pd.DataFrame) -> Figure:
    """Each method's test accuracy pruned to each target, every method chosen for the target it is judged at (mean
    over seeds, bars: 95 % interval): a panel per dataset, a line per method."""
    from bayesprune.report.target_claims import AS_TRAINED as KEPT_AS_TRAINED
    from bayesprune.report.verdicts import interval

    chosen = judged[judged["rule"] != KEPT_AS_TRAINED]
    datasets = [d for d in DATASET_LABELS if d in set(chosen["dataset"])]
    methods = method_order(sorted(set(chosen["method"])))
    labels = [method_label(m) for m in methods]
    fig, axes = panel_grid(len(datasets), 3.2, columns=len(datasets), legend_rows=legend_rows(labels))
    for ax, dataset in zip(axes, datasets):
        for method in methods:
            part = chosen[(chosen["dataset"] == dataset) & (chosen["method"] == method)]
            if part.empty:
                continue
            spans = {target: interval(seeds["pruned"].to_numpy()) for target, seeds in part.groupby("target")}
            x = np.array(list(spans))
            mean = np.array([s.mean for s in spans.values()])
            # an accuracy lies in [0, 1], and so does every bar (two seeds' t interval can reach past either end)
            low = np.array([s.mean - max(s.low, 0.0) if s.seeds > 1 else 0.0 for s in spans.values()])
            high = np.array([min(s.high, 1.0) - s.mean if s.seeds > 1 else 0.0 for s in spans.values()])
            ax.errorbar(x, mean, yerr=np.vstack([low, high]), marker="o", capsize=3, color=method_color(method),
                        label=method_label(method))
        _fraction_axis(ax)
        ax.set_xlim(0.88, 0.992)
        ax.set_ylim(auto=True)
        ax.autoscale(axis="y")
        ax.set_ylabel("test accuracy, pruned")
        ax.set_title(DATASET_LABELS[dataset])
    legend_below(fig, *unique_handles(axes))
    return fig
