"""The compression frontier's readings: the Pareto front, the best ratio within a tolerance, and the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesprune.report.chapters import RESULTS
from bayesprune.report.frontier import (
    as_points,
    at_same_ratio,
    best_ratios,
    compression_verdict,
    error_by_fraction,
    frontier_points,
    frontier_summary,
    pareto_front,
    study_network_points,
    study_network_reading,
)

FRACTIONS = (0.0, 0.5, 0.9, 0.95, 0.98)


def _pruning(errors: dict[str, tuple[float, ...]], seeds: tuple[int, ...] = (1, 2)) -> pd.DataFrame:
    """A pruning table: per method, test error (%) at each fraction, its own criterion, the same for every seed
    but for a 0.2-point spread between seeds."""
    criterion = {"bbb": "snr", "sparsevd": "log_alpha", "bcgnj": "unit_log_alpha"}
    rows = []
    for method, values in errors.items():
        for seed in seeds:
            for fraction, error in zip(FRACTIONS, values):
                rows.append({"dataset": "mnist", "method": method, "seed": seed, "protocol": "corrected", "variant": "",
                             "criterion": criterion.get(method, "magnitude"), "fraction": fraction,
                             "achieved_sparsity": fraction, "accuracy_mean": 1 - (error + 0.2 * (seed - 1.5)) / 100})
    return pd.DataFrame(rows)


def test_the_pareto_front_keeps_only_points_no_other_beats_on_both_axes():
    summary = pd.DataFrame({"compression": [1, 2, 10, 10, 20, 50], "error": [1.5, 1.4, 1.6, 2.0, 3.0, 2.9]})
    front = pareto_front(summary)
    assert list(front.index) == [1, 2, 5]  # (2x, 1.4), (10x, 1.6), (50x, 2.9); 1x, the second 10x and 20x are beaten


def test_best_ratios_take_the_highest_ratio_within_each_tolerance_of_the_dense_error():
    points = as_points(_pruning({"sgd": (2.0, 2.05, 2.3, 4.0, 9.0), "bbb": (2.2, 2.2, 2.25, 2.6, 2.8)}))
    table = best_ratios(frontier_summary(points), (0.1, 0.5))
    sgd, bbb = table.loc[("mnist", "SGD")].iloc[0], table.loc[("mnist", "BBB")].iloc[0]
    assert sgd["dense error %"] == pytest.approx(2.0)
    assert sgd["ratio within 0.1"] == pytest.approx(2.0) and sgd["ratio within 0.5"] == pytest.approx(10.0)
    assert bbb["ratio within 0.1"] == pytest.approx(10.0) and bbb["ratio within 0.5"] == pytest.approx(20.0)
    assert bbb["error there, 0.5"] == pytest.approx(2.6)


def _curves(curves: dict[str, list[tuple[float, ...]]]) -> pd.DataFrame:
    """A pruning table from one error curve (%) per method and seed (seeds 1, 2, ...)."""
    return pd.concat([_pruning({method: errors}, seeds=(seed,)).assign(
        accuracy_mean=[1 - e / 100 for e in errors])
        for method, per_seed in curves.items() for seed, errors in enumerate(per_seed, start=1)], ignore_index=True)


def test_the_verdict_compares_bbb_with_the_best_non_bayesian_method_at_the_same_ratio_and_counts_fine_tuning():
    three = (1, 2, 3)  # seed offsets -0.1, +0.1, +0.3 points, the same for every method
    pruning = _pruning({"sgd": (2.0, 2.05, 2.3, 4.0, 9.0), "bbb": (2.2, 2.2, 2.25, 2.6, 2.8)}, seeds=three)
    ours, verdict = compression_verdict(as_points(pruning), ratios=(12.0, 40.0))  # read at 20x and 50x
    assert verdict == "holds" and "pruned once, no fine-tuning" in ours
    assert "at 12x (achieved: 20x) BBB 2.70 %, the best method without a posterior SGD 4.10 %" in ours
    assert "at 40x (achieved: 50x) BBB 2.90 %" in ours
    tuned = pruning[(pruning["method"] == "sgd") & (pruning["fraction"] > 0)]
    once = tuned.assign(schedule="one-shot", finetune_epochs=3, accuracy_mean=1 - 2.1 / 100, val_accuracy=0.98)
    stepwise = once.assign(schedule="iterative", accuracy_mean=1 - 1.0 / 100, val_accuracy=0.99)  # better, not read
    ours, verdict = compression_verdict(as_points(pruning, pd.concat([once, stepwise])), ratios=(12.0, 40.0))
    assert verdict == "does not hold" and "BBB minus SGD 0.60 [" in ours and "pruned once, then fine-tuned" in ours
    assert compression_verdict(as_points(_pruning({"bbb": (2.2,) * 5})))[1] == "not tested"
    assert "68x" not in compression_verdict(as_points(pruning))[0]  # no network reaches 68x: judged at 12x alone
    group_prior = _pruning({"sgd": (2.0, 2.05, 2.3, 4.0, 9.0), "bbb": (2.2, 2.2, 2.25, 2.6, 2.8),
                            "bcgnj": (2.0, 2.0, 2.0, 2.1, 2.2)}, seeds=three)
    ours, verdict = compression_verdict(as_points(group_prior), ratios=(12.0,))
    assert verdict == "holds" and "without a posterior SGD" in ours  # BC-GNJ has a posterior: not BBB's rival


def test_the_compression_verdict_knows_its_noise_and_says_when_it_rests_on_one_seed():
    from bayesprune.report.frontier import errors_at_ratio

    sgd = [(2.0, 2.0, 2.4, 3.0, 9.0)] * 3
    noisy = [(2.0, 2.0, 2.1, 2.3, 3.0), (2.0, 2.0, 2.1, 3.6, 3.0), (2.0, 2.0, 2.1, 2.4, 3.0)]  # at 20x: 2.3, 3.6, 2.4
    points = as_points(_curves({"sgd": sgd, "bbb": noisy}))
    np.testing.assert_allclose(errors_at_ratio(points, 12.0).loc[("mnist", "BBB"), "error"], [2.3, 3.6, 2.4])
    assert compression_verdict(points, ratios=(12.0,))[1] == "inconclusive"  # 2.77 against 3.0, sd 0.72
    steady = [(2.0, 2.0, 2.1, 2.3, 3.0), (2.1, 2.1, 2.2, 2.4, 3.1), (1.9, 1.9, 2.0, 2.2, 2.9)]
    assert compression_verdict(as_points(_curves({"sgd": sgd, "bbb": steady})), ratios=(12.0,))[1] == "holds"
    one = as_points(_curves({"sgd": sgd[:1], "bbb": steady[:1]}))
    assert compression_verdict(one, ratios=(12.0,))[1] == "holds (one seed)"
    assert np.isnan(errors_at_ratio(one, 100.0)["error"]).all()  # never pruned that far


def test_each_anchor_reads_the_points_chosen_for_it_and_nothing_else():
    from bayesprune.report.frontier import anchor_errors, for_anchor

    three = (1, 2, 3)
    frontier = as_points(_pruning({"sgd": (2.0, 2.05, 2.3, 4.0, 9.0), "bbb": (2.2, 2.2, 2.25, 2.6, 2.8)}, seeds=three))
    assert compression_verdict(frontier, ratios=(12.0, 40.0))[1] == "holds"  # SGD chosen elsewhere: 4.1 % at 20x
    chosen_for_12 = as_points(_pruning({"sgd": (1.9, 1.9, 2.0, 2.1, 8.0)}, seeds=three)).assign(variant="at12x",
                                                                                                  anchor=12.0)
    chosen_for_40 = as_points(_pruning({"sgd": (2.0, 2.0, 2.5, 6.0, 7.0)}, seeds=three)).assign(variant="at40x",
                                                                                                  anchor=40.0)
    fashion = chosen_for_12.assign(dataset="fashion-mnist", anchor=40.0)  # another dataset's choice never leaks in
    anchored = pd.concat([chosen_for_12, chosen_for_40, fashion], ignore_index=True)
    at_12 = for_anchor(frontier, anchored, 12.0)
    assert set(at_12.loc[at_12["method"] == "sgd", "variant"]) == {"at12x"} and set(at_12["dataset"]) == {"mnist"}
    assert len(at_12) == len(frontier)  # SGD's frontier rows replaced, BBB's kept
    assert for_anchor(frontier, None, 12.0) is frontier
    read_12, read_40 = (at_same_ratio(frontier, ratio, anchored) for ratio in (12.0, 40.0))
    assert read_12["means"]["SGD"] == pytest.approx(2.2)  # its 12x choice at 20x: 2.1 % + seed offsets
    assert read_40["means"]["SGD"] == pytest.approx(7.1)  # its 40x choice at 50x
    ours, verdict = compression_verdict(frontier, ratios=(12.0, 40.0), anchored=anchored)  # fails at 12x
    assert verdict == "does not hold" and "at 12x (achieved: 20x) BBB 2.70 %" in ours
    table = anchor_errors(frontier, ratios=(12.0, 40.0), anchored=anchored)
    assert table.loc["12x"].index.tolist() == ["SGD", "BBB"]  # the study's order, the anchored rows in their place
    assert table.loc[("12x", "SGD"), "mean"] == pytest.approx(2.2)
    assert table.loc[("40x", "SGD"), "mean"] == pytest.approx(7.1)


def test_the_anchor_seeds_are_read_per_variant_each_at_its_own_fine_tuning_rate(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.pipeline.results import run_keys
    from bayesprune.pipeline.run_paths import run_id
    from bayesprune.report.frontier import anchored_points

    assert anchored_points(tmp_path / "missing", None).empty
    better_rate = {"at12x": 1.0, "at68x": 0.1}  # each variant's validation data prefers another rate
    for variant, rate in better_rate.items():
        cfg = RunConfig(method="sgd-l1", seed=1, variant=variant, validation=100)
        folder = tmp_path / "runs" / run_id(cfg)
        folder.mkdir(parents=True)
        keys = run_keys(cfg.to_dict())
        pd.DataFrame([{**keys, "criterion": "magnitude", "fraction": f, "achieved_sparsity": f, "accuracy_mean": 0.9}
                      for f in (0.0, 0.93, 0.99)]).to_csv(folder / "pruning.csv", index=False)
        pd.DataFrame([{**keys, "schedule": "one-shot", "finetune_epochs": 3, "finetune_rate": r, "criterion": "magnitude",
                       "fraction": f, "achieved_sparsity": f, "accuracy_mean": 0.97 if r == rate else 0.5,
                       "val_accuracy": 0.96 if r == rate else 0.95} for f in (0.93, 0.99) for r in (1.0, 0.1)]
                     ).to_csv(folder / "finetuned.csv", index=False)
        write_manifest({"config": cfg.to_dict(), "run": run_id(cfg)}, folder)
    points = anchored_points(tmp_path, None)
    assert sorted(points["anchor"].unique()) == [12.0, 68.0]
    tuned = points[points["schedule"] == "one-shot"]
    assert tuned.groupby("variant")["finetune_rate"].unique().map(list).to_dict() == {"at12x": [1.0], "at68x": [0.1]}
    assert (tuned["error"].round(6) == 3.0).all()  # the rate each variant chose, never the other's


def test_profiles_written_before_and_after_the_footprint_columns_read_as_one_set_of_points():
    from bayesprune.pipeline.results import load_table

    older, newer = load_table(RESULTS / "paper", "pruning"), load_table(RESULTS / "study-sparsevd", "pruning")
    assert "compression" not in older and "compression" in newer  # paper predates the footprint
    points = as_points(pd.concat([older, newer], ignore_index=True))
    assert points["compression"].notna().all()
    before = points[points["method"] != "sparsevd"]
    np.testing.assert_allclose(before["compression"], 1 / (1 - before["achieved_sparsity"]))
    after = points[points["method"] == "sparsevd"]
    np.testing.assert_allclose(after["compression"], newer.loc[newer["protocol"] == "corrected", "compression"])
    points = study_network_points(RESULTS / "converged", RESULTS / "study-sparsevd")
    assert points["dataset"].eq("mnist").all()
    achieved = points[points["method"] == "dropout0.9"]  # the biases, never pruned, keep it below the nominal ratio
    assert (achieved["compression"] <= 1 / (1 - achieved["achieved_sparsity"]) + 1e-9).all()
    pruned = achieved[achieved["fraction"] > 0]
    assert (pruned["compression"] < 1 / (1 - pruned["fraction"])).all()
    assert set(points["variant"]) <= {"as-trained", ""}  # one selection rule at a time, never two averaged
    table = error_by_fraction(points)
    assert {"SGD", "BBB", "Sparse VD"} <= set(table.index) and table.columns[0] == "0 %"
    assert table["0 %"].between(1, 5).all() and table.loc["SGD", "99 %"] > table.loc["SGD", "0 %"]
    pruned90 = error_by_fraction(study_network_points(RESULTS / "converged", RESULTS / "study-sparsevd", "pruned90"))
    assert pruned90.loc["BBB", "98 %"] != table.loc["BBB", "98 %"]
    with pytest.raises(ValueError, match="unknown rule"):
        study_network_points(RESULTS / "converged", RESULTS / "study-sparsevd", "pruned")
    reading = study_network_reading(points)
    assert "Sparse VD as trained removes" in reading and "fine-tuned" not in reading


def test_the_fine_tuning_schedule_is_chosen_on_validation_accuracy_not_on_test_error():
    from bayesprune.report.frontier import errors_at_ratio

    pruning = _pruning({"sgd-l1": (2.0, 2.05, 2.3, 4.0, 9.0), "bbb": (2.2, 2.2, 2.25, 2.6, 2.8)}, seeds=(1, 2, 3))
    tuned = pruning[(pruning["method"] == "sgd-l1") & (pruning["fraction"] > 0)]
    good_on_test = tuned.assign(schedule="one-shot", accuracy_mean=1 - 2.1 / 100, val_accuracy=0.90)
    chosen = tuned.assign(schedule="iterative", val_accuracy=0.95)  # no better on test, better on validation
    points = as_points(pruning, pd.concat([good_on_test, chosen]))
    errors = errors_at_ratio(points, 12.0).loc[("mnist", "SGD + L1"), "error"]
    np.testing.assert_allclose(errors, [3.9, 4.1, 4.3])  # the schedule chosen on validation, not the one test prefers
    assert compression_verdict(points, ratios=(12.0,))[1] == "does not hold"  # the anchors read one-shot, for all


def test_the_fine_tuning_rate_is_chosen_on_validation_per_method_variant_and_schedule():
    from bayesprune.report.frontier import at_chosen_rate, rate_choice

    rows = [{"dataset": "mnist", "method": m, "schedule": s, "finetune_rate": r, "fraction": f, "seed": 1,
             "val_accuracy": v, "accuracy_mean": 1 - v}
            for m, s, r, v in (("sgd", "one-shot", 1.0, 0.95), ("sgd", "one-shot", 0.1, 0.97),
                               ("bbb", "one-shot", 1.0, 0.98), ("bbb", "one-shot", 0.1, 0.96))
            for f in (0.9, 0.95)]
    finetuned = pd.DataFrame(rows)
    kept = at_chosen_rate(finetuned)
    assert set(zip(kept["method"], kept["finetune_rate"])) == {("sgd", 0.1), ("bbb", 1.0)}
    assert len(kept) == 4 and rate_choice(finetuned)["chosen"].sum() == 2
    one_rate = finetuned[finetuned["finetune_rate"] == 1.0]
    assert at_chosen_rate(one_rate) is one_rate  # nothing to choose
    anchored = finetuned[finetuned["method"] == "sgd"].assign(variant="at68x", val_accuracy=lambda t: 1.9 - t["val_accuracy"])
    both = pd.concat([finetuned.assign(variant=None), anchored], ignore_index=True)
    kept = at_chosen_rate(both)  # the same method at another point (variant) chooses its own rate
    assert set(zip(kept["method"], kept["variant"].fillna(""), kept["finetune_rate"])) == {
        ("sgd", "", 0.1), ("bbb", "", 1.0), ("sgd", "at68x", 1.0)}


def test_the_training_table_reads_each_model_s_recipe_and_fine_tuning_from_its_runs(tmp_path):
    import json

    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.pipeline.run_paths import run_id
    from bayesprune.report.frontier import training_recipes

    runs = {"sgd-l2": dict(lr=1e-3, prior_log_sigma1=-2.0, patience=8, select="val_acc_pruned", validation=100),
            "bbb": dict(lr=1e-3, patience=0)}
    for method, fields in runs.items():
        for seed, epochs in ((1, 30), (2, 40)):
            cfg = RunConfig(method=method, seed=seed, **fields)
            run = tmp_path / "runs" / run_id(cfg)
            run.mkdir(parents=True)
            pd.DataFrame({"dataset": "mnist", "method": method, "seed": seed, "protocol": "corrected", "variant": "",
                          "epoch": range(1, epochs + 1)}).to_csv(run / "history.csv", index=False)
            (run / "prune.json").write_text(json.dumps({"finetune_epochs": 10, "finetune_patience": 2,
                                                        "finetune_rates": [1.0, 0.1]}))
            write_manifest({"config": cfg.to_dict(), "run": run_id(cfg)}, run)
    table = training_recipes(tmp_path)
    assert list(table.index) == ["SGD + L2", "BBB"]
    l2, bbb = table.loc["SGD + L2"], table.loc["BBB"]
    assert (l2["log prior scale"], l2["epoch kept by"], l2["patience"]) == ("-2.0", "pruned 90 %", "8")
    assert (bbb["log prior scale"], bbb["epoch kept by"], bbb["patience"]) == ("—", "the last epoch", "—")
    assert l2["epochs trained"] == 35 and isinstance(l2["epochs trained"], (int, np.integer))  # whole epochs
    assert l2["fine-tuning"] == "at most 10 epochs, patience 2, at 1 and 0.1 x the training rate"
    assert l2["Adam rate"] == bbb["Adam rate"] == "1e-3"


def test_the_kept_epoch_follows_each_run_s_own_checkpoint_rule(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.pipeline.run_paths import run_id
    from bayesprune.pipeline.results import load_table
    from bayesprune.report.targets import kept_epochs

    dense, pruned = [0.90, 0.95, 0.97, 0.97, 0.96], [0.80, 0.85, 0.82, 0.70, 0.60]  # best at epochs 3 and 2
    chosen98 = [0.50, 0.99, 0.60, 0.95, 0.70]  # epoch 2 is best pruned to 98 %, but half a point below the best dense
    runs = {"sgd": dict(patience=3, select="val_acc"), "sgd-l2": dict(patience=3, select="val_acc_pruned"),
            "sgd-l1": dict(patience=3, select="for98", targets=True), "bbb": dict(patience=0)}
    for method, fields in runs.items():
        cfg = RunConfig(method=method, seed=1, lr=1e-3, validation=100, **fields)
        run = tmp_path / "runs" / run_id(cfg)
        run.mkdir(parents=True)
        pd.DataFrame({"dataset": "mnist", "method": method, "seed": 1, "protocol": "corrected", "variant": "",
                      "epoch": range(1, 6), "val_acc": dense, "val_acc_pruned": pruned,
                      "val_acc_pruned98": chosen98}).to_csv(run / "history.csv",
                                                                                              index=False)
        write_manifest({"config": cfg.to_dict(), "run": run_id(cfg)}, run)
    kept = kept_epochs(tmp_path, load_table(tmp_path, "history")).droplevel(["seed", "protocol", "variant"])
    assert kept.xs("mnist").to_dict() == {"sgd": 3, "sgd-l2": 2, "sgd-l1": 4, "bbb": 5}


def test_sparse_vd_as_trained_sits_beside_molchanov_et_al_layer_by_layer():
    from bayesprune.report.frontier import threshold_point
    from bayesprune.report.reference import SPARSE_VD_LAYER_SPARSITY

    rows = [{"dataset": "mnist", "method": "sparsevd", "seed": seed, "protocol": "corrected", "variant": "",
             "criterion": "log_alpha>3", "fraction": removed, "achieved_sparsity": removed, "accuracy_mean": 0.98,
             "compression": 1 / (1 - removed), "removed_layer1": 0.99, "removed_layer2": 0.95, "removed_layer3": layer3}
            for seed, removed, layer3 in ((1, 0.96, 0.5), (2, 0.97, 0.7))]
    table = threshold_point(as_points(pd.DataFrame(rows)))
    assert table.loc["mean", "removed %"] == pytest.approx(96.5) and table.loc["mean", "layer 3 removed %"] == pytest.approx(60)
    assert table.loc["seed 1", "layer 1 removed %"] == pytest.approx(99)
    published = table.loc["Molchanov et al. 2017"]
    assert tuple(published[[f"layer {k} removed %" for k in (1, 2, 3)]]) == SPARSE_VD_LAYER_SPARSITY
    assert published["weights / nonzero weights"] == 68 and published["removed %"] == pytest.approx(100 * (1 - 1 / 68))
    assert np.isnan(published["compression"])  # theirs counts the weights alone; ours over all parameters is ours only
    assert table.loc["seed 2", "weights / nonzero weights"] == pytest.approx(1 / 0.03)


def test_the_authors_schedule_is_read_against_molchanov_et_al_in_words():
    from bayesprune.report.frontier import schedule_reading

    rows = [{"dataset": "mnist", "method": "sparsevd", "seed": seed, "protocol": "corrected", "variant": "",
             "criterion": "log_alpha>3", "fraction": 1 - 1 / ratio, "achieved_sparsity": 1 - 1 / ratio,
             "accuracy_mean": 1 - error / 100, "compression": 0.9 * ratio, "removed_layer1": 0.99,
             "removed_layer2": 0.97, "removed_layer3": 0.6} for seed, ratio, error in ((1, 60.0, 1.9), (2, 70.0, 2.1))]
    reading = schedule_reading(as_points(pd.DataFrame(rows)))
    assert ("(2 seeds), Sparse VD as trained removes 98.5 % of the weights at 2.00 ± 0.14 % test error, against "
            "their 1.92 %.") in reading
    assert ("Its compression is 65x ± 7 by Molchanov et al.'s count (weights over nonzero weights), against their "
            "68x; over all parameters, the frontier's count, it is 58x ± 6.") in reading
    assert "By layer it removes 99.0, 97.0, 60.0 % against their 98.9, 97.2, 62.0 %." in reading


def test_han_et_al_s_point_is_read_against_our_retrained_magnitude_baseline_seed_by_seed():
    from bayesprune.report.frontier import han_comparison

    once = _curves({"sgd-l2": [(2.0, 2.1, 2.3, 2.6, 3.5), (2.2, 2.3, 2.5, 2.8, 3.7)]})
    tuned = once[once["fraction"] > 0].assign(schedule="iterative", finetune_epochs=3, val_accuracy=0.98)
    tuned["accuracy_mean"] += 0.004  # retraining gains 0.4 points everywhere
    points = as_points(once, tuned)
    points["compression"] = 1 / (1 - points["fraction"])  # 2x, 10x, 20x, 50x
    text = han_comparison(points)
    assert "Ours (SGD + L2, pruned step by step, fine-tuned after each step): 2.10 [0.83, 3.37] % dense" in text
    assert "and 2.30 [1.03, 3.57] % at 20x, the first of our ratios at or above 12x" in text
    assert "their 1.59 % lies inside our interval" in text and "by +0.20 points from dense, theirs by -0.05" in text
    assert "no counterpart" in han_comparison(points, method="sgd")


def test_bc_gnj_joins_the_frontier_on_lenet_only_with_its_as_trained_network_as_one_star(tmp_path):
    from matplotlib import pyplot as plt

    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.pipeline.run_paths import run_id
    from bayesprune.report.frontier import AS_TRAINED, anchors, structured_points
    from bayesprune.report.plots import frontier_figure

    assert structured_points(tmp_path).empty  # no BC-GNJ run: nothing to add
    for variant, hidden in (("lenet", (300, 100)), ("study-network", (500, 500))):
        for seed, removed in ((1, 0.9), (2, 0.92)):
            cfg = RunConfig(method="bcgnj", seed=seed, variant=variant, hidden=hidden)
            run = tmp_path / "runs" / run_id(cfg)
            run.mkdir(parents=True)
            architecture = "-".join(map(str, (784, *hidden, 10)))
            rows = [(criterion, fraction, architecture if fraction == 0 else "784-400-50-10")
                    for criterion in ("unit_log_alpha", "magnitude") for fraction in (0.0, 0.5, 0.9)]
            rows.append(("unit_log_alpha>-3", removed, "784-300-40-10"))
            pd.DataFrame([{"dataset": "mnist", "method": "bcgnj", "seed": seed, "protocol": "corrected",
                           "variant": variant, "criterion": c, "fraction": f, "achieved_sparsity": f,
                           "architecture": a, "accuracy_mean": 0.98, "compression": 1 / (1 - f)} for c, f, a in rows]
                         ).to_csv(run / "pruning.csv", index=False)
            write_manifest({"config": cfg.to_dict(), "run": run_id(cfg)}, run)
    points = structured_points(tmp_path)
    assert set(points["variant"]) == {"lenet"} and len(points) == 2 * 7
    summary = frontier_summary(points)
    star = summary[summary["criterion"] == "unit_log_alpha>-3"]
    assert len(star) == 1 and star["fraction"].iloc[0] == pytest.approx(0.91)  # one point at the seeds' mean
    figure = frontier_figure(summary, anchors())
    labels = figure.axes[0].get_legend_handles_labels()[1] + [t.get_text() for t in figure.legends[0].get_texts()]
    assert f"BC-GNJ {AS_TRAINED['unit_log_alpha>-3']}" in labels and "BC-GNJ" in labels
    assert not any("by magnitude" in label for label in labels)  # its own criterion only, as for every method
    plt.close(figure)


def test_the_frontier_figure_keeps_the_error_axis_it_is_given_and_marks_only_ticks_inside_it():
    from matplotlib import pyplot as plt

    from bayesprune.report.frontier import anchors
    from bayesprune.report.plots import frontier_figure

    summary = frontier_summary(as_points(_pruning({"sgd": (12.0, 12.5, 20.0, 40.0, 80.0)})))
    figure = frontier_figure(summary, anchors().iloc[:0], limits=(8.0, 95.0))
    ax = figure.axes[0]
    assert ax.get_ylim() == pytest.approx((8.0, 95.0))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["10", "20", "30", "50", "90"]
    assert not any(t.get_text() for t in ax.get_yticklabels(minor=True))
    plt.close(figure)


def test_the_frontier_reads_one_dataset_at_a_time_and_names_it():
    from bayesprune.report.frontier import frontier_reading

    three = (1, 2, 3)
    mnist = _pruning({"sgd": (2.0, 2.05, 2.3, 4.0, 9.0), "bbb": (2.2, 2.2, 2.25, 2.6, 2.8)}, seeds=three)
    fashion = _pruning({"sgd": (11.0, 11.1, 12.0, 20.0, 40.0), "bbb": (12.0, 12.0, 12.2, 12.6, 13.0)}, seeds=three)
    points = as_points(pd.concat([mnist, fashion.assign(dataset="fashion-mnist")], ignore_index=True))
    on_mnist, on_fashion = frontier_reading(points), frontier_reading(points, dataset="fashion-mnist")
    assert on_mnist.startswith("On LeNet-300-100 (3 seeds per method)") and "SGD (2.10 % dense)" in on_mnist
    assert on_fashion.startswith("On Fashion-MNIST (LeNet-300-100, 3 seeds per method)")
    assert "SGD (11.10 % dense)" in on_fashion and "(2.10 % dense)" not in on_fashion
    assert "at 12x, BBB's test error is 12.70 % against 20.10 % for SGD" in on_fashion


def test_the_search_reading_names_each_choice_its_epoch_and_a_choice_at_the_end_of_what_was_tried():
    from bayesprune.report.formatting import rate_text
    from bayesprune.report.frontier import search_reading

    rows = [("sgd", lr, np.nan, 0.88, pruned, epoch) for lr, pruned, epoch in ((3e-5, 0.72, 3), (1e-4, 0.67, 1),
                                                                                 (1e-3, 0.51, 1))]
    rows += [("sgd-l2", 1e-3, s, 0.88, pruned, 24) for s, pruned in ((0.0, 0.80), (-2.0, 0.88), (-3.0, 0.86))]
    points = pd.DataFrame([{"dataset": "fashion-mnist", "method": m, "lr": lr, "prior scale": s, "val_acc": a,
                            "val_acc_pruned": p, "val_acc_pruned epoch": e, "val_acc epoch": 40, "epochs": 60}
                           for m, lr, s, a, p, e in rows])
    text = search_reading(points)
    assert "SGD at Adam 3e-5 (the lowest value tried): 0.7200, best at epoch 3 of 60" in text
    assert "SGD + L2 at Adam 1e-3, prior scale e^-2: 0.8800, best at epoch 24 of 60" in text
    assert [rate_text(lr) for lr in (3e-5, 1e-3, 2.5e-4)] == ["3e-5", "1e-3", "2.5e-4"]


def test_bbb_compresses_better_only_if_it_beats_every_method_without_a_posterior_not_just_the_closest_by_mean():
    steady = [(2.0, 2.0, 2.1, 2.3, 3.0), (2.1, 2.1, 2.2, 2.4, 3.1), (1.9, 1.9, 2.0, 2.2, 2.9)]  # at 20x: 2.3 ± 0.1
    sgd = [(2.0, 2.0, 2.4, 3.0, 9.0)] * 3  # 3.0 at 20x: clearly worse than BBB
    wild = [(2.0, 2.0, 2.4, 1.5, 9.0), (2.0, 2.0, 2.4, 4.8, 9.0), (2.0, 2.0, 2.4, 3.0, 9.0)]  # 3.1 ± 1.65: no verdict
    points = as_points(_curves({"sgd": sgd, "dropout0.5": wild, "bbb": steady}))
    read = at_same_ratio(points[points["dataset"] == "mnist"], 12.0)
    assert read["rival"] == "SGD" and read["gap"].below(0.0) == "holds"  # the closest by mean alone would hold
    assert read["verdict"] == "inconclusive" and set(read["gaps"]) == {"SGD", "Dropout 0.5"}
    assert compression_verdict(points, ratios=(12.0,))[1] == "inconclusive"


def test_a_later_profile_s_method_replaces_an_earlier_one_s_in_every_table():
    from bayesprune.report.frontier import superseded

    frontier = pd.DataFrame({"dataset": ["mnist"] * 3 + ["fashion-mnist"], "method": ["sgd", "sparsevd", "sparsevd", "sparsevd"],
                             "error": [2.0, 2.2, 2.3, 11.0]})
    schedule = pd.DataFrame({"dataset": ["mnist"], "method": ["sparsevd"], "error": [1.9]})
    stacked = superseded([frontier, schedule])
    assert list(zip(stacked["method"], stacked["error"])) == [("sgd", 2.0), ("sparsevd", 11.0), ("sparsevd", 1.9)]
    # a table the later profile lacks (no fine-tuning) still loses the replaced method's rows
    assert list(superseded([frontier, None], [set(zip(frontier["dataset"], frontier["method"])),
                                              {("mnist", "sparsevd")}])["error"]) == [2.0, 11.0]
    assert superseded([None, None]) is None
    points = frontier_points(RESULTS / "frontier", RESULTS / "sparsevd-schedule")
    mnist = points[(points["dataset"] == "mnist") & (points["method"] == "sparsevd")]
    assert set(mnist["schedule"]) == {"none"} and set(mnist["variant"]) <= {""} and mnist["seed"].nunique() == 3


def test_the_anchor_source_names_per_dataset_who_is_judged_at_a_point_chosen_there():
    from bayesprune.report.frontier import anchor_source

    anchored = pd.DataFrame({"dataset": "mnist", "method": ["bbb", "bbb", "bbb", "sgd-l1"], "anchor": 12.0,
                             "seed": [1, 2, 3, 1]})
    assert anchor_source(anchored.iloc[:3]).startswith("On MNIST, BBB is judged at the point chosen for each ratio")
    both = anchor_source(anchored)
    assert both.startswith("On MNIST, SGD + L1 and BBB are each judged") and "1 to 3 seeds each" in both
    assert anchor_source(anchored, "fashion-mnist").startswith(
        "On Fashion-MNIST, each method is judged at the point its frontier search chose for 90 % pruned")


def test_a_frontier_s_capped_runs_are_named_and_said_to_be_read_elsewhere_only_where_every_ratio_reads_other_runs():
    from bayesprune.report.chapters import RESULTS
    from bayesprune.pipeline.results import finished_runs
    from bayesprune.report.frontier import capped_reading

    folder = RESULTS / "frontier-fashion"
    if not finished_runs(folder):
        pytest.skip("frontier-fashion has not run here")
    anchored = pd.DataFrame({"dataset": "fashion-mnist", "method": ["sgd", "sgd", "dropout0.5", "dropout0.5"],
                             "anchor": [12.0, 68.0, 12.0, 68.0]})
    text = capped_reading(folder, anchored)
    assert text.startswith("The cap of 60 epochs ended SGD on every seed (its rule kept epochs ")
    assert "Dropout 0.5 on every seed" in text and "read each of these methods at the point chosen" in text
    assert capped_reading(folder, anchored[anchored["anchor"] == 12.0].iloc[:1]).endswith(
        "The verdicts read these runs as they are, at the cap.")  # Dropout 0.5 is read at neither ratio
    assert capped_reading(RESULTS / "frontier", anchored) == ""  # patience ended every MNIST run
