"""The defect ablation, the spread argument and the claims' verdicts, on hand-made tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesprune.report.claims import (
    baselines_collapse, bbb_keeps_accuracy, posterior_not_prior, seed_accuracy, underfitting,
)
from bayesprune.report.tables import defect_ablation, spread_and_kept, spread_correlation

FRACTIONS = (0.0, 0.5, 0.75, 0.9)


def _pruning(method, protocol, criterion, accuracies, dataset="mnist", seed=0):
    return [{"dataset": dataset, "method": method, "seed": seed, "protocol": protocol, "criterion": criterion,
             "fraction": f, "accuracy_mean": a, "accuracy_ensemble": a} for f, a in zip(FRACTIONS, accuracies)]


def _study_vs_corrected() -> pd.DataFrame:
    return pd.DataFrame(
        _pruning("bbb", "study", "snr_rho", (0.98, 0.98, 0.98, 0.98))
        + _pruning("bbb", "study without entropy_detached", "snr_rho", (0.97, 0.97, 0.97, 0.97))
        + _pruning("bbb", "corrected", "snr", (0.98, 0.97, 0.90, 0.40))
        + _pruning("bbb", "corrected", "magnitude", (0.98, 0.90, 0.50, 0.10))
        + _pruning("sgd", "corrected", "magnitude", (0.98, 0.97, 0.80, 0.30))
        + _pruning("sgd", "study", "magnitude", (0.98, 0.97, 0.80, 0.35))
    )


def test_defect_ablation_orders_fixes_and_measures_change_from_study():
    ablation = pd.DataFrame([
        {"dataset": "mnist", "method": "bbb", "seed": 0, "protocol": "study", "fixed": fixed, "criterion": "snr",
         "fraction": 0.9, "accuracy_mean": acc, "accuracy_ensemble": acc}
        for fixed, acc in (("none", 0.98), ("pruning_detached", 0.11), ("snr_over_rho", 0.98))])
    table = defect_ablation(_study_vs_corrected(), ablation, 0.9).loc[("mnist", "BBB")]
    assert list(table.index) == ["nothing (study)", "pruning_detached", "snr_over_rho", "entropy_detached",
                                 "everything (corrected)"]
    assert table.loc["pruning_detached", "change"] == pytest.approx(0.11 - 0.98)
    assert table.loc["entropy_detached", "accuracy_mean"] == pytest.approx(0.97)
    assert table.loc["everything (corrected)", "change"] == pytest.approx(0.40 - 0.98)


def test_spread_correlation_is_one_when_spread_orders_the_accuracy_kept():
    pruning, weights = [], []
    for seed, (std, kept) in enumerate(((0.1, 0.5), (0.2, 0.6), (0.3, 0.9))):
        pruning += _pruning("sgd", "corrected", "magnitude", (1.0, 1.0, 1.0, kept), seed=seed)
        weights.append({"dataset": "mnist", "method": "sgd", "seed": seed, "protocol": "corrected", "layer": "all",
                        "parameter": "weight", "std": std, "kurtosis": -std, "near_zero_share": 0.1})
    frame = spread_and_kept(pd.DataFrame(weights), pd.DataFrame(pruning))
    assert frame["kept"].tolist() == pytest.approx([0.5, 0.6, 0.9])
    correlation = spread_correlation(frame).loc[("mnist", "corrected")]
    assert correlation["std"] == pytest.approx(1.0) and correlation["kurtosis"] == pytest.approx(-1.0)


def test_verdicts_follow_the_numbers():
    accuracy = seed_accuracy(_study_vs_corrected())
    assert bbb_keeps_accuracy(accuracy)["verdict"].startswith("holds only under the study's code")
    assert baselines_collapse(accuracy)["verdict"] == "holds"  # SGD loses 0.68 > 0.20 (one seed)
    flat = seed_accuracy(pd.DataFrame(_pruning("bbb", "corrected", "snr", (0.98, 0.98, 0.975, 0.97))))
    assert bbb_keeps_accuracy(flat)["verdict"] == "holds (one seed)"


def _seeds(method, criterion, at_90, dense=0.98):
    """Three seeds of one method: dense accuracy, and the accuracies at 90 % pruned."""
    return [row for seed, acc in enumerate(at_90)
            for row in _pruning(method, "corrected", criterion, (dense, dense, dense, acc), seed=seed)]


def test_a_loss_inside_seed_spread_of_the_threshold_is_inconclusive():
    straddling = seed_accuracy(pd.DataFrame(_seeds("bbb", "snr", (0.965, 0.96, 0.955))))  # loses 0.015-0.025
    assert bbb_keeps_accuracy(straddling)["verdict"] == "inconclusive"
    kept = seed_accuracy(pd.DataFrame(_seeds("bbb", "snr", (0.979, 0.978, 0.977))))
    assert bbb_keeps_accuracy(kept)["verdict"] == "holds" and "[" in bbb_keeps_accuracy(kept)["ours"]


def test_collapse_is_judged_per_baseline_and_sparse_vd_is_not_a_baseline():
    rows = (_seeds("sgd", "magnitude", (0.30, 0.31, 0.29)) + _seeds("sgd-l1", "magnitude", (0.975, 0.976, 0.974))
            + _seeds("sparsevd", "log_alpha", (0.30, 0.30, 0.30)) + _seeds("bbb", "snr", (0.97, 0.971, 0.969)))
    accuracy = seed_accuracy(pd.DataFrame(rows))
    claim = baselines_collapse(accuracy)
    assert claim["verdict"] == "does not hold for SGD + L1" and "Sparse VD" not in claim["ours"]
    from bayesprune.report.claims import bbb_prunes_best, outperforms_by_a_huge_margin

    best = bbb_prunes_best(accuracy)
    assert best["verdict"] == "does not hold" and "BBB − SGD + L1" in best["ours"]
    assert outperforms_by_a_huge_margin(accuracy)["verdict"] == "does not hold"
    # where no baseline collapses for sure, the claim fails outright, not "in part"
    kept = seed_accuracy(pd.DataFrame(_seeds("sgd-l1", "magnitude", (0.975, 0.976, 0.974))
                                      + _seeds("sgd", "magnitude", (0.60, 0.98, 0.88))))  # loses 0.2 ± 0.5: unclear
    assert baselines_collapse(kept)["verdict"] == "does not hold (inconclusive for SGD)"


def test_the_posterior_adds_only_where_every_map_estimate_loses_clearly_more():
    bbb = _seeds("bbb", "snr", (0.975, 0.976, 0.974))
    sgd = _seeds("sgd", "magnitude", (0.30, 0.31, 0.29))  # not a MAP estimate: not compared
    fragile_map = _seeds("sgd-mixture", "magnitude", (0.80, 0.81, 0.79))
    robust_l1 = _seeds("sgd-l1", "magnitude", (0.976, 0.975, 0.977))
    adds = posterior_not_prior(seed_accuracy(pd.DataFrame(bbb + sgd + fragile_map)))
    assert adds["verdict"] == "holds" and "MAP, BBB's prior − BBB" in adds["ours"] and "SGD −" not in adds["ours"]
    assert posterior_not_prior(seed_accuracy(pd.DataFrame(bbb + fragile_map + robust_l1)))["verdict"] == "does not hold"
    assert posterior_not_prior(seed_accuracy(pd.DataFrame(bbb)))["verdict"].startswith("not tested")


def test_underfitting_reads_the_last_fifth_of_training():
    rising = pd.DataFrame([{"dataset": "mnist", "method": "sgd", "seed": 0, "protocol": "corrected", "epoch": e,
                            "test_acc": 0.9 + 0.01 * e} for e in range(1, 11)])
    assert underfitting(rising)["verdict"] == "holds (one seed)"
    assert underfitting(rising.assign(test_acc=0.95))["verdict"] == "does not hold (one seed)"
    # two flat runs that stop at different epochs: no gain, although their mean over runs drops at the end
    flat = pd.DataFrame([{"dataset": d, "method": "sgd", "seed": 0, "protocol": "corrected", "epoch": e, "test_acc": a}
                         for d, a, last in (("mnist", 0.98, 10), ("fashion-mnist", 0.88, 6)) for e in range(1, last + 1)])
    assert underfitting(flat)["verdict"] == "does not hold" and "SGD 0.000 [" in underfitting(flat)["ours"]


def test_cost_claim_uses_the_median_epoch_and_names_the_study_style_ratio():
    from bayesprune.report.claims import bbb_cost

    history = pd.DataFrame([{"protocol": "corrected", "method": m, "seconds": s}
                            for m, per in (("sgd", [2.0, 2.0, 2.0]), ("bbb", [6.0, 6.0, 900.0])) for s in per])
    bench = [{"machine": "cpu", "bbb/sgd": 3.5, "bbb-study/sgd": 20.0}]
    claim = bbb_cost(history, bench)
    assert "this profile's epochs: 3.0x" in claim["ours"] and "as the study writes it: 20.0x on cpu" in claim["ours"]
    assert claim["verdict"] == "holds only for the study's implementation"
    gpu = [{"machine": "gpu", "bbb/sgd": 3.3, "bbb-study/sgd": 181.5,
            "models": {"bbb-study": {"step_ms": 37.16}, "sgd-eager": {"step_ms": 1.5555}, "sgd": {"step_ms": 0.2047}}}]
    assert "as the study writes it: 23.9x on gpu" in bbb_cost(history, gpu)["ours"]  # eager against eager


def test_the_cost_verdict_rests_on_the_benchmarks_not_on_epochs_of_a_shared_machine():
    from bayesprune.report.claims import bbb_cost

    loaded = pd.DataFrame([{"protocol": "corrected", "method": m, "seconds": s} for m, s in (("sgd", 1.0), ("bbb", 6.0))])
    claim = bbb_cost(loaded, [{"machine": "cpu", "bbb/sgd": 3.0}])
    assert "this profile's epochs: 6.0x" in claim["ours"] and claim["verdict"] == "holds only for the study's implementation"
    assert bbb_cost(loaded, [])["verdict"] == "partly: BBB is several times dearer, less than 10x"  # no bench: the epochs


def test_claims_by_regime_puts_each_regime_s_verdict_side_by_side():
    from bayesprune.report.claims import claims_by_regime

    weights = pd.DataFrame([{"dataset": "mnist", "method": m, "seed": 0, "protocol": "corrected", "layer": "all",
                             "parameter": "weight", "std": s, "kurtosis": 0.0, "near_zero_share": 0.1}
                            for m, s in (("bbb", 0.1), ("sgd", 0.2))])
    history = pd.DataFrame([{"dataset": "mnist", "method": m, "seed": 0, "protocol": "corrected", "epoch": e,
                             "test_acc": 0.97, "seconds": 1.0} for m in ("bbb", "sgd") for e in (1, 2)])
    short = _study_vs_corrected()
    trained = pd.DataFrame(_pruning("bbb", "corrected", "snr", (0.98, 0.98, 0.98, 0.975))
                           + _pruning("sgd", "corrected", "magnitude", (0.98, 0.97, 0.80, 0.30)))
    table = claims_by_regime({"50 epochs": (short, history, weights), "converged": (trained, history, weights)}, [])
    keeps = table.iloc[0]
    assert keeps["verdict: 50 epochs"].startswith("holds only under the study's code")
    assert keeps["verdict: converged"] == "holds (one seed)"


def test_table2_holds_when_pruning_by_snr_raises_the_error_no_more_than_blundell_s_plus_slack():
    from bayesprune.report.claims import blundell_table2

    def accuracy(errors):
        rows = [{"dataset": "mnist", "method": "bbb", "seed": 0, "protocol": "corrected", "criterion": "snr",
                 "fraction": f, "accuracy_mean": 1 - e / 100, "accuracy_ensemble": 1 - e / 100}
                for f, e in zip((0.0, 0.95, 0.98), errors)]
        return seed_accuracy(pd.DataFrame(rows))

    held = blundell_table2(accuracy((1.30, 1.40, 1.60)))  # rises 0.10 and 0.30: within 0.05 + 0.2, 0.15 + 0.2
    assert held["verdict"] == "shape: holds (one seed); level: holds (one seed)"
    assert "1.30 (one seed) % unpruned" in held["ours"]
    steep = blundell_table2(accuracy((1.30, 1.40, 1.70)))["verdict"]  # 98 % rises 0.40
    assert steep.startswith("shape: does not hold") and steep.endswith("level: holds (one seed)")
    assert blundell_table2(accuracy((2.43, 2.62, 2.93)))["verdict"].endswith("level: does not hold (one seed)")
    assert blundell_table2(seed_accuracy(pd.DataFrame(_pruning("bbb", "corrected", "snr", (0.98,) * 4,
                                                                dataset="fashion-mnist"))))["verdict"].startswith("not tested")


def test_claims_about_baselines_are_not_tested_where_a_regime_has_only_bbb():
    from bayesprune.report.claims import bbb_prunes_best

    only_bbb = seed_accuracy(pd.DataFrame(_pruning("bbb", "corrected", "snr", (0.98, 0.98, 0.98, 0.975))))
    assert baselines_collapse(only_bbb)["verdict"].startswith("not tested")
    assert bbb_prunes_best(only_bbb)["verdict"].startswith("not tested")
    assert bbb_keeps_accuracy(only_bbb)["verdict"] == "holds (one seed)"


def test_regime_comparison_sets_bbb_by_both_criteria():
    from bayesprune.report.claims import regime_comparison

    rows = (_pruning("bbb", "corrected", "snr", (0.98, 0.98, 0.98, 0.97)) + _pruning("bbb", "corrected", "magnitude",
            (0.98, 0.95, 0.90, 0.60)) + _pruning("sgd", "corrected", "magnitude", (0.98, 0.97, 0.80, 0.30))
            + _pruning("dropout0.5", "corrected", "magnitude", (0.98, 0.97, 0.85, 0.50)))
    table = regime_comparison({"point": ("at the operating point", (pd.DataFrame(rows),))})
    row = table.loc[("at the operating point", "mnist")]
    assert row["BBB unpruned"] == 0.98 and row["BBB 90 % SNR"] == 0.97 and row["BBB 90 % |mu|"] == 0.60
    assert pd.isna(row["BBB 98 % SNR"]) and "best baseline 90 %" not in row  # no rival picked on test images


def test_epochs_to_a_pruned_accuracy_compare_bbb_with_the_regularised_baselines():
    from bayesprune.report.claims import fewer_epochs_to_a_pruned_accuracy

    def runs(method, curve, seconds):
        return [{"dataset": "mnist", "method": method, "seed": seed, "protocol": "corrected", "epoch": e + 1,
                 "val_acc_pruned": a - 0.001 * seed, "seconds": seconds, "test_acc": 0.9}
                for seed in range(3) for e, a in enumerate(curve)]

    fast_bbb = runs("bbb", (0.5, 0.96, 0.97, 0.97), 6.0)
    slow_l1 = runs("sgd-l1", (0.5, 0.6, 0.7, 0.8, 0.9, 0.96, 0.965), 2.0)
    claim = fewer_epochs_to_a_pruned_accuracy(pd.DataFrame(fast_bbb + slow_l1 + runs("sgd", (0.2,) * 3, 1.0)))
    assert claim["verdict"] == "holds" and "SGD +" in claim["ours"] and "SGD 0" not in claim["ours"]
    assert "to 0.963: BBB 3.0" in claim["ours"] and "SGD + L1 7.0" in claim["ours"]
    reversed_ = fewer_epochs_to_a_pruned_accuracy(pd.DataFrame(runs("bbb", (0.5, 0.6, 0.7, 0.8, 0.9, 0.96, 0.965), 6.0)
                                                               + runs("sgd-l1", (0.5, 0.96, 0.97), 2.0)))
    assert reversed_["verdict"] == "does not hold"
    no_record = pd.DataFrame(runs("bbb", (0.5,), 6.0)).drop(columns="val_acc_pruned")
    assert fewer_epochs_to_a_pruned_accuracy(no_record)["verdict"].startswith("not tested")
    # a BBB trained without a validation split records no pruned score beside a baseline that does: not compared
    unsplit = pd.DataFrame(runs("bbb", (0.5, 0.6), 6.0)).assign(val_acc_pruned=float("nan"))
    mixed = fewer_epochs_to_a_pruned_accuracy(pd.concat([unsplit, pd.DataFrame(runs("sgd-l1", (0.5, 0.9), 2.0))]))
    assert mixed["verdict"].startswith("not tested")


def _validation(scores: dict[str, float], rule_score: str = "val_acc") -> pd.DataFrame:
    """Each method's history over three seeds: two epochs, the second its best under the rule's score."""
    return pd.DataFrame([{"dataset": "mnist", "method": m, "seed": seed, "protocol": "corrected", "variant": "",
                          "epoch": epoch, "val_acc": v - 0.01 * (epoch == 1), rule_score: v - 0.01 * (epoch == 1)}
                         for m, v in scores.items() for seed in (1, 2, 3) for epoch in (1, 2)])


def test_the_fair_comparison_sets_bbb_beside_the_map_estimate_chosen_on_validation_data():
    from bayesprune.report.claims import fair_comparison_reading, fair_comparison_table, validation_scores

    rows = (_seeds("bbb", "snr", (0.975, 0.976, 0.974)) + _seeds("sgd-l1", "magnitude", (0.977, 0.970, 0.979))
            + _seeds("sgd-l2", "magnitude", (0.990, 0.991, 0.992)) + _seeds("sgd", "magnitude", (0.30, 0.31, 0.29)))
    # on test images L2 leads; on validation data, the rule's own score, L1 does: L1 is the rival
    history = _validation({"bbb": 0.975, "sgd-l1": 0.98, "sgd-l2": 0.97, "sgd": 0.96})
    assert validation_scores(history, "val_acc").loc[("mnist", "corrected", "sgd-l1")].tolist() == [0.98] * 3
    found = {"point": ("at the operating point, as trained", (pd.DataFrame(rows), history))}
    table = fair_comparison_table(found)
    row = table.loc[("as trained", "mnist", "90 %")]
    assert row["best MAP estimate"] == "SGD + L1" and row["BBB against the MAP estimate"] == "no clear difference"
    assert row["best plain baseline"] == "SGD" and row["BBB against the plain baseline"] == "more"
    assert row["BBB"] == pytest.approx(0.975) and row["MAP estimate accuracy"] == pytest.approx(0.9753, abs=1e-4)
    reading = fair_comparison_reading(table)
    assert ("BBB keeps clearly more than the best MAP estimate in 0 and clearly less in 0; clearly more than the "
            "best plain baseline in 1 and clearly less in 0; the rest show no clear difference.") in reading
    assert fair_comparison_reading(fair_comparison_table({})) == "The operating point has not run."
    # with no validation score at all, no rival is named rather than one picked on test images
    blind = fair_comparison_table({"point": ("as trained", (pd.DataFrame(rows), history.drop(columns="val_acc")))})
    assert "best MAP estimate" not in blind.columns


def test_the_best_baseline_claims_judge_bbb_against_every_baseline():
    from bayesprune.report.claims import bbb_prunes_best

    bbb, l1 = _seeds("bbb", "snr", (0.975, 0.976, 0.974)), _seeds("sgd-l1", "magnitude", (0.90, 0.91, 0.92))
    claim = bbb_prunes_best(seed_accuracy(pd.DataFrame(bbb + l1 + _seeds("sgd", "magnitude", (0.979, 0.980, 0.981)))))
    assert claim["verdict"] == "does not hold" and "BBB − SGD (the closest of 2)" in claim["ours"]
    ahead = seed_accuracy(pd.DataFrame(bbb + l1 + _seeds("sgd", "magnitude", (0.30, 0.31, 0.29))))
    assert bbb_prunes_best(ahead)["verdict"] == "holds"


def test_a_decaying_rate_s_table2_is_judged_as_the_constant_rate_s_and_read_against_it_where_that_ran(tmp_path):
    from bayesprune.report.chapters import RESULTS
    from bayesprune.report.claims import decayed_table2, table2_judged

    constant, decayed = RESULTS / "blundell", RESULTS / "blundell-schedule-pruned"  # both trained from clean trees
    table, judged, reading = decayed_table2(constant, decayed)
    assert judged == table2_judged(decayed) and judged["verdict"].startswith("shape: ")
    assert judged != table2_judged(constant)  # each profile judged on its own runs
    assert reading is not None and "constant" in reading
    assert table.shape[0] >= 3  # unpruned, 95 % and 98 % at least
    assert decayed_table2(tmp_path / "absent", decayed)[2] is None


def test_the_frontier_regime_reads_the_frontier_of_every_dataset_that_has_run_as_one(tmp_path):
    from bayesprune.report.chapters import RESULTS
    from bayesprune.pipeline.results import load_table
    from bayesprune.report.claims import _joined_tables, regimes

    both = _joined_tables([RESULTS / "frontier", RESULTS / "frontier-fashion"], finetuned=True)
    pruning, finetuned, uncertainty, precision = both[0], both[3], both[4], both[5]
    assert set(pruning["dataset"]) == set(finetuned["dataset"]) == set(uncertainty["dataset"]) == {"mnist", "fashion-mnist"}
    assert precision is None  # no folder has BC-GNJ bits
    mnist = _joined_tables([RESULTS / "frontier"], finetuned=True)[0]
    assert len(pruning) == len(mnist) + len(load_table(RESULTS / "frontier-fashion", "pruning"))
    regime = regimes(RESULTS / "paper", tmp_path / "none", tmp_path / "none", tmp_path / "none",
                     (RESULTS / "frontier", tmp_path / "none", RESULTS / "frontier-fashion"))
    assert list(regime) == ["recipe", "frontier"]
    assert set(regime["frontier"][1][0]["dataset"]) == {"mnist", "fashion-mnist"}
