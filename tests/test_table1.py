"""Blundell et al.'s Table 1: which model a run is, the search's choice, and our errors beside theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bayesprune.pipeline.profiles import get_profile
from bayesprune.report.table1 import (chosen_variants, search_points, table1, table1_model, table1_reading,
                                      trained_points)


def test_each_run_belongs_to_one_of_the_four_models_and_bbb_is_told_apart_by_its_prior():
    assert table1_model("sgd", "lr1e-3") == "SGD" and table1_model("dropout0.5", "plain") == "Dropout"
    assert table1_model("bbb", "gaussian.s-1") == "BBB, Gaussian prior"
    assert table1_model("bbb", "mixture") == "BBB, scale mixture"
    with pytest.raises(ValueError, match="none of Table 1's models"):
        table1_model("sgd-l2", "lr1e-3")


def _history(points: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """A history table: per (method, variant), validation accuracy by epoch."""
    return pd.DataFrame([{"dataset": "mnist", "method": m, "seed": 0, "protocol": "corrected", "variant": v,
                          "epoch": e, "val_acc": a} for (m, v), accs in points.items()
                         for e, a in enumerate(accs, start=1)])


def test_the_search_chooses_per_model_the_point_of_highest_validation_accuracy():
    history = _history({("sgd", "lr1e-3"): [0.97, 0.98], ("sgd", "lr3e-3"): [0.975, 0.971],
                        ("bbb", "gaussian.s0"): [0.96, 0.97], ("bbb", "gaussian.s-1"): [0.972, 0.971],
                        ("bbb", "mixture.s1-0"): [0.95, 0.981], ("bbb", "mixture.s1-1"): [0.97, 0.98]})
    assert chosen_variants(history) == {"SGD": "lr1e-3", "BBB, Gaussian prior": "gaussian.s-1",
                                        "BBB, scale mixture": "mixture.s1-0"}
    points = search_points(history)
    assert list(points.index.get_level_values("model").unique()) == ["SGD", "BBB, Gaussian prior", "BBB, scale mixture"]
    assert points.loc[("BBB, Gaussian prior", "log prior scale -1"), "best_epoch"] == 1
    assert points["chosen"].sum() == 3
    gaussian = points.xs("BBB, Gaussian prior", level="model").index.tolist()  # strongest prior first
    assert gaussian == ["log prior scale -1", "log prior scale 0"]


def test_the_edge_search_reads_as_part_of_the_search_and_its_points_fall_in_order(tmp_path):
    from bayesprune.data.datasets import sha256_of
    from bayesprune.pipeline.results import MANIFEST
    from bayesprune.report.table1 import searched_history

    def search(name: str, points: dict) -> Path:
        for (method, variant), accs in points.items():
            run = tmp_path / name / "runs" / f"{method}-{variant}"
            run.mkdir(parents=True)
            _history({(method, variant): accs}).to_csv(run / "history.csv", index=False)
            (run / MANIFEST).write_text(json.dumps({"files": {"history.csv": sha256_of(run / "history.csv")}}))
        return tmp_path / name

    first = search("table1-search", {("bbb", "mixture.s1-0"): [0.981], ("bbb", "mixture.s1-1"): [0.978]})
    edges = search("table1-search-edges", {("bbb", "mixture.s1--1"): [0.983]})
    history = searched_history(first, edges, tmp_path / "absent")
    points = search_points(history).xs("BBB, scale mixture", level="model")
    assert points.index.tolist() == ["−log σ1 = 1", "−log σ1 = 0", "−log σ1 = -1"]  # the prior widening
    assert points["chosen"].tolist() == [False, False, True]
    with pytest.raises(FileNotFoundError, match="no search"):
        searched_history(tmp_path / "absent")


def _pruning(errors: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """A pruning table: per (method, variant), the dense test error (%) of each seed, at fraction 0 and 0.9."""
    return pd.DataFrame([{"dataset": "mnist", "method": m, "variant": v, "seed": s, "protocol": "corrected",
                          "criterion": "snr" if m == "bbb" else "magnitude", "fraction": f,
                          "accuracy_mean": 1 - (e + 10 * f) / 100,
                          "accuracy_ensemble": 1 - (e - 0.1) / 100 if m == "bbb" else float("nan")}
                         for (m, v), per_seed in errors.items() for s, e in enumerate(per_seed, start=1)
                         for f in (0.0, 0.9)])


def test_table1_sets_our_dense_errors_beside_theirs_and_reads_the_orderings_with_their_noise():
    pruning = _pruning({("sgd", "plain"): [1.9, 2.0, 2.1], ("dropout0.5", "plain"): [1.5, 1.6, 1.7],
                        ("bbb", "gaussian"): [1.80, 1.81, 1.79], ("bbb", "mixture"): [1.60, 1.62, 1.58]})
    table = table1(pruning)
    assert list(table.index) == ["SGD", "Dropout", "BBB, Gaussian prior", "BBB, scale mixture"]
    assert table.loc["SGD", "ours"] == "2.00 ± 0.10" and table.loc["SGD", "ours, ensemble"] == "—"
    assert table.loc["BBB, scale mixture", "ours, ensemble"] == "1.50 ± 0.02"
    assert table.loc["BBB, scale mixture", "Blundell et al."] == 1.36 and table.loc["SGD", "Blundell et al."] == 1.83
    reading = table1_reading(pruning)
    assert "BBB, scale mixture against BBB, Gaussian prior: -0.20 [" in reading
    assert "-0.20 [-0.24, -0.16] points, lower (theirs -0.46)" in reading  # Welch at 2.9 degrees, not 2
    assert "BBB, scale mixture against Dropout: 0.00 [" in reading and "not clearly different (theirs -0.15)" in reading


def test_blundell_table1_trains_each_model_at_the_point_its_search_chose():
    from bayesprune.pipeline.results import finished_runs
    from bayesprune.report.chapters import RESULTS
    from bayesprune.report.table1 import searched_history

    search = RESULTS / "table1-search"
    if not finished_runs(search):
        pytest.skip("table1-search has not run")
    history = searched_history(search, RESULTS / "table1-search-edges")  # the edges' search, where it has run
    searched = {cfg.variant: cfg for name in ("table1-search", "table1-search-edges")
                for cfg in get_profile(name).runs()}
    chosen = {model: {"lr": searched[v].lr, "prior_log_sigma1": searched[v].prior_log_sigma1}
              for model, v in chosen_variants(history).items()}
    trained = trained_points(get_profile("blundell-table1"))
    for model, point in chosen.items():
        assert trained[model]["lr"] == point["lr"], model
        if model.startswith("BBB"):
            assert trained[model]["prior_log_sigma1"] == point["prior_log_sigma1"], model


def test_the_search_says_which_choices_lie_at_the_edge_of_the_values_tried_and_by_how_many_images():
    from bayesprune.report.table1 import search_edges

    history = _history({("sgd", "lr3e-4"): [0.9815], ("sgd", "lr1e-3"): [0.9812], ("sgd", "lr3e-3"): [0.9778],
                        ("dropout0.5", "lr3e-4"): [0.9819], ("dropout0.5", "lr1e-3"): [0.9833],
                        ("dropout0.5", "lr3e-3"): [0.9760],
                        ("bbb", "gaussian.s-2"): [0.9766], ("bbb", "gaussian.s-1"): [0.9797],
                        ("bbb", "gaussian.s0"): [0.9808]})
    text = search_edges(search_points(history))
    assert text.startswith("2 of the 3 choices lie at the edge of the values tried")
    assert "SGD at Adam 3e-4 (3 validation images of 10 000 ahead of Adam 1e-3)" in text
    assert "BBB, Gaussian prior at log prior scale 0 (11 ahead of log prior scale -1)." in text
    assert "Dropout" not in text  # its choice, Adam 1e-3, lies between the rates tried
    inside = _history({("sgd", "lr3e-4"): [0.97], ("sgd", "lr1e-3"): [0.98], ("sgd", "lr3e-3"): [0.975]})
    assert search_edges(search_points(inside)) == "Every chosen point lies inside the values its search tried."
