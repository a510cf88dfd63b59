"""The defect ablation, the spread argument and the claims' verdicts, on hand-made tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesprune.report.claims import accuracy_table, baselines_collapse, bbb_keeps_accuracy, claims_html, underfitting
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
    accuracy = accuracy_table(_study_vs_corrected())
    assert bbb_keeps_accuracy(accuracy)["verdict"].startswith("holds only under the study's code")
    assert baselines_collapse(accuracy)["verdict"] == "holds"  # SGD loses 0.68 > 0.20
    flat = accuracy_table(pd.DataFrame(_pruning("bbb", "corrected", "snr", (0.98, 0.98, 0.975, 0.97))))
    assert bbb_keeps_accuracy(flat)["verdict"] == "holds"


def test_underfitting_reads_the_last_fifth_of_training():
    rising = pd.DataFrame([{"dataset": "mnist", "method": "sgd", "seed": 0, "protocol": "corrected", "epoch": e,
                            "test_acc": 0.9 + 0.01 * e} for e in range(1, 11)])
    assert underfitting(rising)["verdict"] == "holds"
    assert underfitting(rising.assign(test_acc=0.95))["verdict"] == "does not hold"
    # two flat runs that stop at different epochs: no gain, although their mean over runs drops at the end
    flat = pd.DataFrame([{"dataset": d, "method": "sgd", "seed": 0, "protocol": "corrected", "epoch": e, "test_acc": a}
                         for d, a, last in (("mnist", 0.98, 10), ("fashion-mnist", 0.88, 6)) for e in range(1, last + 1)])
    assert underfitting(flat)["verdict"] == "does not hold" and "SGD 0.000" in underfitting(flat)["ours"]


def test_claims_html_escapes_text_and_links_chapters():
    row = {"claim": "a < b", "study": "s", "ours": "o", "verdict": "holds", "see": ("pruning",)}
    html = claims_html(pd.DataFrame([row]))
    assert "a &lt; b" in html and '<a href="pruning.html">pruning</a>' in html


def test_cost_claim_uses_the_median_epoch_and_names_the_study_style_ratio():
    from bayesprune.report.claims import bbb_cost

    history = pd.DataFrame([{"protocol": "corrected", "method": m, "seconds": s}
                            for m, per in (("sgd", [2.0, 2.0, 2.0]), ("bbb", [6.0, 6.0, 900.0])) for s in per])
    bench = [{"machine": "cpu", "bbb/sgd": 3.5, "bbb-study/sgd": 20.0}]
    claim = bbb_cost(history, bench)
    assert "this profile's epochs: 3.0x" in claim["ours"] and "as the study writes it: 20.0x on cpu" in claim["ours"]
    assert claim["verdict"] == "holds only for the study's implementation"


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
    assert keeps["verdict: converged"] == "holds"
    html = claims_html(table)
    assert "<th>50 epochs</th><th>converged</th>" in html and html.count("<b>holds</b>") >= 1


def test_table2_holds_when_pruning_by_snr_raises_the_error_no_more_than_blundell_s_plus_slack():
    from bayesprune.report.claims import blundell_table2

    def accuracy(errors):
        rows = [{"dataset": "mnist", "method": "bbb", "seed": 0, "protocol": "corrected", "criterion": "snr",
                 "fraction": f, "accuracy_mean": 1 - e / 100, "accuracy_ensemble": 1 - e / 100}
                for f, e in zip((0.0, 0.95, 0.98), errors)]
        return accuracy_table(pd.DataFrame(rows))

    held = blundell_table2(accuracy((1.30, 1.40, 1.60)))  # rises 0.10 and 0.30: within 0.05 + 0.2, 0.15 + 0.2
    assert held["verdict"] == "holds" and "1.30 % unpruned" in held["ours"]
    assert blundell_table2(accuracy((1.30, 1.40, 1.70)))["verdict"] == "does not hold"  # 98 % rises 0.40
    assert blundell_table2(accuracy_table(pd.DataFrame(_pruning("bbb", "corrected", "snr", (0.98,) * 4,
                                                                dataset="fashion-mnist"))))["verdict"].startswith("not tested")


def test_claims_about_baselines_are_not_tested_where_a_regime_has_only_bbb():
    from bayesprune.report.claims import bbb_prunes_best

    only_bbb = accuracy_table(pd.DataFrame(_pruning("bbb", "corrected", "snr", (0.98, 0.98, 0.98, 0.975))))
    assert baselines_collapse(only_bbb)["verdict"].startswith("not tested")
    assert bbb_prunes_best(only_bbb)["verdict"].startswith("not tested")
    assert bbb_keeps_accuracy(only_bbb)["verdict"] == "holds"


def test_headline_numbers_quote_bbb_and_the_best_baseline_at_90_percent():
    from bayesprune.report.claims import headline_numbers

    numbers = headline_numbers({"point": _study_vs_corrected()})
    assert numbers["point_bbb"] == "0.980 → 0.400 (MNIST)"
    assert numbers["point_baseline"] == "SGD 0.300 (MNIST)"
    assert numbers["point_table2"] == "no MNIST BBB runs pruned at 95 % and 98 %"
    assert numbers["recipe_beside_reference"] == "(the committed reference runs)"
    beside = headline_numbers({"recipe": _study_vs_corrected(), "reference": _study_vs_corrected()})
    assert "reference runs of the study's recipe give BBB 0.980 → 0.400 (MNIST)" in beside["recipe_beside_reference"]


def test_regime_comparison_sets_bbb_by_both_criteria_beside_the_best_baseline():
    from bayesprune.report.claims import regime_comparison

    rows = (_pruning("bbb", "corrected", "snr", (0.98, 0.98, 0.98, 0.97)) + _pruning("bbb", "corrected", "magnitude",
            (0.98, 0.95, 0.90, 0.60)) + _pruning("sgd", "corrected", "magnitude", (0.98, 0.97, 0.80, 0.30))
            + _pruning("dropout0.5", "corrected", "magnitude", (0.98, 0.97, 0.85, 0.50)))
    table = regime_comparison({"point": ("at the operating point", (pd.DataFrame(rows),))})
    row = table.loc[("at the operating point", "mnist")]
    assert row["BBB unpruned"] == 0.98 and row["BBB 90 % SNR"] == 0.97 and row["BBB 90 % |mu|"] == 0.60
    assert pd.isna(row["BBB 98 % SNR"]) and row["best baseline 90 %"] == "Dropout 0.5 0.500"
