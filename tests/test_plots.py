"""The book's figure style: every figure fills the text column, its text stays legible there, its panels hold at
most six series, and the style's owner refuses a figure that breaks it."""

from __future__ import annotations

import inspect

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bayesprune.report import plots
from bayesprune.report.plots import (COLUMN_INCHES, MAX_SERIES, MIN_TEXT_PX, IllegibleFigure, book_figure, in_groups,
                                     panel_grid, style_problems)


def test_a_figure_built_in_the_style_passes_and_each_breach_is_named():
    with matplotlib.rc_context(plots.STYLE):
        fig, (ax,) = panel_grid(1, 3.0)
        for k in range(MAX_SERIES):
            ax.plot([0, 1], [k, k], label=f"series {k}")
        ax.set_title("fine")
        assert style_problems(fig) == []
        ax.plot([0, 1], [9, 9], label="one too many")
        ax.text(0.5, 0.5, "tiny", fontsize=6)
        wide = Figure(figsize=(2 * COLUMN_INCHES, 3), dpi=plots.FIGURE_DPI)
        wide.subplots().set_title("shrunk", fontsize=12)
    problems = " ".join(style_problems(fig))
    assert "'tiny'" in problems and f"{MAX_SERIES + 1} series" in problems
    wide_problems = " ".join(style_problems(wide))
    assert "width" in wide_problems and "'shrunk' at 7.5 px" in wide_problems  # 12 pt shown at half size
    assert 7.5 < MIN_TEXT_PX


def test_the_style_owner_refuses_an_illegible_figure():
    @book_figure
    def small_print() -> Figure:
        fig, (ax,) = panel_grid(1, 3.0)
        ax.set_xlabel("footnote", fontsize=7)
        return fig

    with pytest.raises(IllegibleFigure, match="small_print: text 'footnote'"):
        small_print()


def test_every_figure_of_the_report_goes_through_the_style_owner():
    drawn = [name for name, f in inspect.getmembers(plots, inspect.isfunction)
             if f.__module__ == plots.__name__ and inspect.signature(f).return_annotation in (Figure, "Figure")]
    assert len(drawn) >= 15
    assert [name for name in drawn if not hasattr(getattr(plots, name), "__wrapped__")] == []


def test_figures_drawn_from_data_keep_the_style():
    rng = np.random.default_rng(0)
    rows = [{"dataset": d, "protocol": p, "method": m, "criterion": c, "fraction": f, "seed": s,
             "accuracy_mean": rng.uniform(0.1, 1.0)}
            for d in ("mnist", "fashion-mnist") for p in ("corrected", "study")
            for m in ("sgd", "dropout0.5", "dropout0.75", "dropout0.9", "sgd-l1", "sgd-l2", "bbb")
            for c in (("snr", "magnitude") if m == "bbb" else ("magnitude",))
            for f in (0.0, 0.5, 0.9, 0.99) for s in (1, 2)]
    fig = plots.pruning_curves(pd.DataFrame(rows))  # 8 series per protocol: split into two panels of four
    assert fig.get_figwidth() == pytest.approx(COLUMN_INCHES)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2 * 2 * 2
    assert max(len(ax.get_legend_handles_labels()[1]) for ax in fig.axes) == 4
    plots.prior_figure(0.5, 1.0, 0.0025)
    plots.augmentation_figure()
    plots.kl_weight_figure()


def test_groups_are_few_and_balanced():
    assert [len(g) for g in in_groups(list(range(8)))] == [4, 4]
    assert [len(g) for g in in_groups(list(range(6)))] == [6]
    assert [len(g) for g in in_groups(list(range(13)))] == [5, 5, 3]
