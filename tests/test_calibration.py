"""The uncertainty chapter's reading: each model through its own criterion and prediction, and the claim's rule."""

from __future__ import annotations

import pandas as pd

from bayesprune.report.calibration import keeps_uncertainty, own_rows, pruning_keeps_uncertainty


def _rows(method, criterion, prediction, ece, auroc, dataset="mnist"):
    """Three seeds' rows at 0 and 90 % pruned: ece and auroc give (unpruned, pruned) per seed."""
    return [{"dataset": dataset, "method": method, "seed": seed, "protocol": "corrected", "variant": "",
             "criterion": criterion, "prediction": prediction, "fraction": fraction,
             "ece": ece[k] + 0.001 * seed, "auroc_entropy_other": auroc[k] - 0.001 * seed}
            for seed in range(3) for k, fraction in enumerate((0.0, 0.9))]


def test_own_rows_take_the_monte_carlo_prediction_where_a_model_has_one():
    table = pd.DataFrame(_rows("bbb", "snr", "mc", (0.01, 0.01), (0.9, 0.9))
                         + _rows("bbb", "snr", "deterministic", (0.05, 0.05), (0.8, 0.8))
                         + _rows("bbb", "magnitude", "mc", (0.05, 0.05), (0.8, 0.8))
                         + _rows("sgd", "magnitude", "deterministic", (0.02, 0.02), (0.9, 0.9)))
    own = own_rows(table)
    assert set(zip(own["method"], own["criterion"], own["prediction"])) == {("bbb", "snr", "mc"),
                                                                             ("sgd", "magnitude", "deterministic")}


def test_a_model_keeps_its_uncertainty_only_inside_both_bounds():
    kept = pd.DataFrame(_rows("bbb", "snr", "mc", (0.010, 0.012), (0.95, 0.945)))
    assert keeps_uncertainty(kept, "bbb")[0] == "holds"
    worse_calibrated = pd.DataFrame(_rows("bbb", "snr", "mc", (0.010, 0.060), (0.95, 0.95)))
    assert keeps_uncertainty(worse_calibrated, "bbb")[0] == "does not hold"
    blinder = pd.DataFrame(_rows("bbb", "snr", "mc", (0.010, 0.010), (0.95, 0.80)))
    assert keeps_uncertainty(blinder, "bbb")[0] == "does not hold"
    sharper = pd.DataFrame(_rows("bbb", "snr", "mc", (0.020, 0.010), (0.90, 0.95)))  # pruning helped both
    verdict, evidence = keeps_uncertainty(sharper, "bbb")
    assert verdict == "holds" and "ECE rose -0.010" in evidence and "AUROC fell -0.050" in evidence
    assert evidence.startswith("MNIST: ")  # datasets as readers know them


def test_the_claim_applies_the_rule_to_bbb_and_names_the_others():
    table = pd.DataFrame(_rows("bbb", "snr", "mc", (0.010, 0.012), (0.95, 0.945))
                         + _rows("sgd", "magnitude", "deterministic", (0.02, 0.20), (0.9, 0.6)))
    claim = pruning_keeps_uncertainty(table)
    assert claim["verdict"] == "holds" and "SGD does not hold" in claim["ours"]
    assert pruning_keeps_uncertainty(None)["verdict"].startswith("not tested")
