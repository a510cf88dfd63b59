"""The target search read under each rule: the point and epoch chosen for each sparsity within the margin of the
method's best dense accuracy, the grid's ends flagged, and the search's cost."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesprune.report.targets import (chosen_points, grid_extensions, rule_choice, target_choices,
                                       target_search_answer)


def _history() -> pd.DataFrame:
    """Two points of L1 on MNIST (scales 1 and -2) and one of SGD, three epochs each."""
    rows = []
    runs = {("sgd-l1", "s1", 1.0): [(0.970, 0.90, 0.60), (0.980, 0.91, 0.55), (0.981, 0.92, 0.50)],
            ("sgd-l1", "s-2", -2.0): [(0.960, 0.95, 0.90), (0.977, 0.96, 0.85), (0.972, 0.97, 0.88)],
            ("sgd", "plain", float("nan")): [(0.975, 0.50, 0.11), (0.978, 0.55, 0.12), (0.979, 0.40, 0.10)]}
    for (method, variant, scale), epochs in runs.items():
        for epoch, (dense, pruned90, pruned98) in enumerate(epochs, start=1):
            rows.append({"dataset": "mnist", "method": method, "seed": 0, "protocol": "corrected", "variant": variant,
                         "epoch": epoch, "val_acc": dense, "val_acc_pruned90": pruned90, "val_acc_pruned95": pruned90,
                         "val_acc_pruned98": pruned98, "val_acc_pruned99": pruned98, "seconds": 10.0, "lr": 1e-3,
                         "prior scale": scale})
    return pd.DataFrame(rows)


def test_each_rule_takes_its_best_epoch_of_any_point_inside_the_margin_of_the_method_s_best():
    history = _history()
    l1 = history[history["method"] == "sgd-l1"]
    assert rule_choice(l1, "val_acc")[["variant", "epoch"]].tolist() == ["s1", 3]
    # within 0.981 - 0.005: s1 epochs 2-3 and s-2 epoch 2; at 98 % the strong prior's epoch 2 keeps most
    assert rule_choice(l1, "for98")[["variant", "epoch"]].tolist() == ["s-2", 2]
    assert rule_choice(l1, "for90")[["variant", "epoch"]].tolist() == ["s-2", 2]  # 0.96 against s1's 0.92


def test_the_choices_flag_a_scale_at_the_grid_s_end_and_count_the_search():
    choices = target_choices(_history())
    row = choices.loc[("mnist", "sgd-l1", "chosen for 98 %")]
    assert row["prior scale"] == -2.0 and row["scale in grid"] == "strong end" and row["pruned 98 %"] == 0.85
    assert (row["points tried"], row["search epochs"]) == (2, 6) and row["search hours"] == pytest.approx(60 / 3600)
    assert choices.loc[("mnist", "sgd-l1", "as trained"), "scale in grid"] == "weak end"
    assert choices.loc[("mnist", "sgd", "as trained"), "scale in grid"] == "—"
    points = chosen_points(choices)
    assert points.loc[("mnist", "sgd-l1", 1e-3, -2.0), "chosen by"].startswith("chosen for 90 %")


def test_a_search_s_history_carries_each_run_s_point_from_its_configuration():
    from pathlib import Path

    from bayesprune.report.targets import search_history

    results = Path(__file__).resolve().parents[1] / "results"
    history = search_history(results / "target-search")
    assert "lr" in history and not {"lr_x", "lr_y"} & set(history.columns)
    assert history.loc[history["method"] == "sgd", "prior scale"].isna().all()
    l1 = history[history["method"] == "sgd-l1"]
    assert l1["prior scale"].notna().all() and set(l1["lr"]) <= {1e-3, 3e-4, 3e-3}
    with pytest.raises(FileNotFoundError, match="no search"):
        search_history(Path("/nonexistent"))


def test_the_search_extends_one_step_past_every_end_a_rule_chose_and_nowhere_else():
    choices = target_choices(_history())
    assert choices.loc[("mnist", "sgd", "as trained"), "rate in grid"] == "—"  # one rate tried: nothing to bracket
    extensions = grid_extensions(choices, _history()).set_index(["method", "past"])
    assert set(extensions.index) == {("sgd-l1", "strong end"), ("sgd-l1", "weak end")}
    assert extensions.loc[("sgd-l1", "strong end"), "prior scale"] == -3.0
    assert extensions.loc[("sgd-l1", "weak end"), "prior scale"] == 2.0
    assert extensions.loc[("sgd-l1", "weak end"), "asked by"] == "as trained"
    inside = _history()
    inside = pd.concat([inside, inside[inside["variant"] == "s1"].assign(variant="s3", **{"prior scale": 3.0},
                                                                          val_acc=0.5),
                        inside[inside["variant"] == "s-2"].assign(variant="s-4", **{"prior scale": -4.0}, val_acc=0.5)],
                       ignore_index=True)
    assert grid_extensions(target_choices(inside), inside).empty  # every choice bracketed: the search is complete
    rates = pd.concat([_history().query("method == 'sgd'"),
                       _history().query("method == 'sgd'").assign(variant="fast", lr=3e-3, val_acc=0.5)],
                      ignore_index=True)
    slow = grid_extensions(target_choices(rates), rates).set_index("past")
    assert slow.loc["slow end", "lr"] == pytest.approx(1e-3 / 10 ** 0.5)


def test_the_search_reads_as_a_table_of_choices_a_figure_and_its_cost():
    from bayesprune.report.plots import style_problems, target_scale_figure
    from bayesprune.report.targets import choice_table, every_point, scale_curves, search_cost

    history = _history()
    choices = target_choices(history)
    table = choice_table(choices)
    assert list(table.columns) == ["as trained", "chosen for 90 %", "chosen for 95 %", "chosen for 98 %",
                                   "chosen for 99 %"]
    assert table.loc[("mnist", "sgd-l1"), "chosen for 98 %"] == "e^-2: 0.850"
    assert table.loc[("mnist", "sgd"), "as trained"] == "Adam 1e-3: 0.979"
    curves = scale_curves(history)
    assert set(curves["method"]) == {"sgd-l1"} and set(curves["score"]) == {"dense", "pruned 90 %", "pruned 95 %",
                                                                          "pruned 98 %", "pruned 99 %"}
    assert curves.query("score == 'pruned 98 %' and `prior scale` == -2.0")["validation accuracy"].item() == 0.90
    assert style_problems(target_scale_figure(curves)) == []
    assert search_cost(choices).loc[("mnist", "sgd-l1"), "points tried"] == 2
    assert every_point(history).loc[("mnist", "sgd-l1", 1e-3, 1.0), "pruned 98 %"] == 0.60


def test_a_folder_whose_runs_never_recorded_the_targets_is_no_search(tmp_path):
    from bayesprune.report.chapters import RESULTS
    from bayesprune.report.targets import has_targets, search_history

    assert not has_targets(RESULTS / "fair-search")  # its runs record the dense and 90 % scores only
    with pytest.raises(FileNotFoundError, match="recorded the targets"):
        search_history(RESULTS / "fair-search")


def test_the_seed_profile_trains_each_method_at_the_point_each_rule_chose():
    from bayesprune.report.targets import seed_variants

    variants = seed_variants(target_choices(_history()), "mnist")
    assert list(variants) == ["as-trained", "for90", "for95", "for98", "for99"]
    assert variants["for98"] == {"select": "for98", "method_config": {"sgd-l1": {"lr": 1e-3, "prior_log_sigma1": -2.0},
                                                                      "sgd": {"lr": 1e-3}}}
    assert variants["as-trained"]["method_config"]["sgd-l1"]["prior_log_sigma1"] == 1.0
    assert variants["as-trained"]["select"] == "val_acc"


def test_the_search_stops_at_an_end_where_the_curve_has_flattened_within_seed_noise():
    history = _history()
    weak = history[history["variant"] == "s1"].assign(variant="s2", **{"prior scale": 2.0})
    flat = pd.concat([history, weak.assign(val_acc=weak["val_acc"] + 0.001)], ignore_index=True)  # s2 leads by 0.001
    asked = grid_extensions(target_choices(flat), flat)
    assert ("sgd-l1", "weak end") not in set(zip(asked["method"], asked["past"]))
    steep = pd.concat([history, weak.assign(val_acc=weak["val_acc"] + 0.004)], ignore_index=True)  # by 0.004
    asked = grid_extensions(target_choices(steep), steep)
    assert ("sgd-l1", "weak end") in set(zip(asked["method"], asked["past"]))


@pytest.mark.parametrize("dataset, name", [("mnist", "target-seeds-mnist"), ("fashion-mnist", "target-seeds-fashion")])
def test_each_seed_profile_holds_to_the_search_it_continues(dataset, name):
    from bayesprune.pipeline.profiles import load_profiles
    from bayesprune.report.chapters import RESULTS
    from bayesprune.report.targets import search_history, seed_variants

    searched = [RESULTS / "target-search", RESULTS / "target-search-edges", RESULTS / "target-search-edges-fashion"]
    history = search_history(*searched)
    assert grid_extensions(target_choices(history[history["dataset"] == dataset]),
                           history[history["dataset"] == dataset]).empty  # the search is closed
    variants = seed_variants(target_choices(history[history["dataset"] == dataset]), dataset)
    profile = load_profiles()[name]
    assert profile.datasets == (dataset,)
    assert dict(profile.variants) == {name: (("select", body["select"]),) for name, body in variants.items()}
    assert {variant: {method: dict(point) for method, point in methods}
            for variant, methods in profile.variant_method_config} == {
        name: body["method_config"] for name, body in variants.items()}


def test_the_search_s_answer_says_where_the_plain_baselines_collapse_and_who_leads_each_target():
    history = _history()
    assert target_search_answer(target_choices(history)) == (
        "The plain baselines (SGD, Dropout 0.5) collapse from 90 % pruned on, whatever their rate. Who leads where:\n\n"
        "- BBB: nowhere;\n- SGD + L1: on MNIST at 90 to 99 %.")
    bbb = history[history["method"] == "sgd-l1"].assign(method="bbb", val_acc_pruned98=0.99, val_acc_pruned99=0.99)
    kept = history[history["method"] == "sgd"].assign(val_acc_pruned95=0.9)  # SGD keeps 95 %: no collapse from 90
    both = pd.concat([history[history["method"] != "sgd"], kept, bbb], ignore_index=True)
    assert target_search_answer(target_choices(both)) == (
        "Who leads where:\n\n- BBB: on MNIST at 98 and 99 %;\n- SGD + L1: on MNIST at 90 and 95 %.")


def test_map_is_read_at_bbb_s_own_slab_and_the_reading_follows_the_gap():
    from bayesprune.report.targets import matched_prior, matched_prior_reading

    l1 = _history()[lambda h: h["method"] == "sgd-l1"]
    bbb = l1.assign(method="bbb")
    for halved, words in ((0.5, "The prior alone does not prune as the posterior does."),
                          (1.0, "At BBB's slab the prior alone does as well.")):
        mixture = l1.assign(method="sgd-mixture", val_acc_pruned98=l1["val_acc_pruned98"] * halved)
        history = pd.concat([bbb, mixture], ignore_index=True)
        table = matched_prior(history, target_choices(history))
        row = table[table["target"] == 0.98].iloc[0]
        assert row["BBB slab"] == row["MAP slab"] == -2.0 and row["BBB"] == 0.85
        assert row["MAP at that slab"] == pytest.approx(0.85 * halved)
        assert matched_prior_reading(table).endswith(words)
    assert matched_prior_reading(table.iloc[:0]).startswith("MAP under the scale mixture has not been trained")
