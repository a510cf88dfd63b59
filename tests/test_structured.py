"""BC-GNJ's structured compression in the report: the sweep by units and by weights, and the units kept."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesprune.evaluate.scores import UNIT_THRESHOLD_CRITERION
from bayesprune.report.plots import structured_figure, units_over_training
from bayesprune.report.structured import (networks, prunes_units_and_bits, structured_reading, structured_sweep,
                                          units_by_epoch)
from bayesprune.report.verdicts import FAILS, HOLDS, NOT_TESTED


def _pruning() -> pd.DataFrame:
    """Two seeds of BC-GNJ on LeNet-300-100: as trained, and at 0 and 90 % by units and by weights."""
    rows = []
    for seed, shift in ((1, 0.0), (2, 0.02)):
        rows.append(dict(seed=seed, criterion=UNIT_THRESHOLD_CRITERION, fraction=0.6 + shift, accuracy_mean=0.98 - shift,
                         compression=2.5, architecture=f"{300 + 10 * seed}-90-30-10"))  # each seed its own share
        for criterion, architecture, pruned in (("unit_log_alpha", "200-50-20-10", 0.97),
                                                ("magnitude", "700-300-100-10", 0.95)):
            rows.append(dict(seed=seed, criterion=criterion, fraction=0.0, accuracy_mean=0.985 - shift,
                             compression=1.0, architecture="784-300-100-10"))
            rows.append(dict(seed=seed, criterion=criterion, fraction=0.9, accuracy_mean=pruned - shift,
                             compression=10.0, architecture=architecture))
    rows.append(dict(seed=1, criterion="snr", fraction=0.9, accuracy_mean=0.5, compression=10.0,
                     architecture="784-300-100-10"))
    frame = pd.DataFrame(rows).assign(dataset="mnist", method="bcgnj", protocol="corrected", variant="lenet")
    return frame.assign(achieved_sparsity=frame["fraction"])


def test_the_sweep_names_the_network_averages_seeds_and_keeps_only_bcgnj_criteria():
    sweep = structured_sweep(_pruning())
    assert set(sweep.index.get_level_values("network")) == {"LeNet-300-100"}
    assert list(dict.fromkeys(sweep.index.get_level_values("pruned by"))) == [
        "as trained (units above the threshold removed)", "whole units, by log alpha", "single weights, by |mu|"]
    trained = sweep.iloc[0]
    assert trained["test error (%)"] == pytest.approx(3.0) and trained["sd"] == pytest.approx(2 ** 0.5)
    assert trained["architecture left"] == "315-90-30-10" and trained["seeds"] == 2
    assert trained["weights removed (%)"] == pytest.approx(61.0)  # one row for both seeds, at their mean share
    units = sweep.loc[("mnist", "LeNet-300-100", "whole units, by log alpha")]
    assert list(units["weights removed (%)"]) == [0.0, 90.0] and units["architecture left"].iloc[-1] == "200-50-20-10"


def test_units_by_epoch_shows_every_tenth_epoch_and_the_last_mean_over_seeds():
    history = pd.DataFrame([dict(dataset="mnist", method="bcgnj", protocol="corrected", variant="lenet", seed=s,
                                 epoch=e, units_kept_0=784 - e - s, units_kept_1=300, units_kept_2=100)
                            for s in (1, 2) for e in range(1, 26)])
    units = units_by_epoch(history, networks(_pruning()))
    assert list(units.index.get_level_values("epoch")) == [10, 20, 25]
    assert list(units.columns) == ["inputs", "hidden layer 1", "hidden layer 2"]
    assert units.loc[("mnist", "LeNet-300-100", 25), "inputs"] == pytest.approx(784 - 25 - 1.5)


def test_both_figures_keep_the_book_style():
    history = pd.DataFrame([dict(dataset="mnist", method="bcgnj", protocol="corrected", variant="lenet", seed=1,
                                 epoch=e, units_kept_0=784 - e, units_kept_1=300, units_kept_2=100)
                            for e in range(1, 4)])
    assert len(units_over_training(units_by_epoch(history, {"lenet": "LeNet-300-100"}, every=1)).axes) == 1
    assert len(structured_figure(structured_sweep(_pruning())).axes) == 1


def test_the_reading_sets_units_against_weights_at_ninety_percent():
    reading = structured_reading(structured_sweep(_pruning()))
    assert reading.startswith("As trained, BC-GNJ removes whole units down to:\n\n- 2.5x at 3.00 % test error on "
                              "LeNet-300-100\n\n")
    assert "whole units cost less error than single weights (4.00 against 6.00 %)" in reading
    worse = _pruning()
    worse.loc[worse["criterion"] == "unit_log_alpha", "accuracy_mean"] -= 0.05
    assert "whole units cost more error" in structured_reading(structured_sweep(worse))


def _precision(architectures: list[str], gain: float = 3.0) -> pd.DataFrame:
    """BC-GNJ's bits, one row per seed, at the unit threshold."""
    return pd.DataFrame([dict(dataset="mnist", method="bcgnj", protocol="corrected", variant="lenet", seed=seed,
                              threshold=-3.0, architecture=architecture, compression_pruned=10.0,
                              compression_precision=gain * 10.0, accuracy_full=0.98, accuracy_reduced=0.979)
                         for seed, architecture in enumerate(architectures, start=1)])


def test_the_claim_holds_when_units_and_bits_go_at_little_cost_and_fails_when_units_stay():
    dense = pd.DataFrame([dict(dataset="mnist", method="bcgnj", protocol="corrected", variant="lenet", seed=seed,
                               criterion="unit_log_alpha", fraction=0.0, accuracy_mean=0.982 + 0.001 * seed,
                               architecture="784-300-100-10") for seed in (1, 2, 3)])
    held = prunes_units_and_bits(dense, _precision(["300-100-40-10", "310-110-30-10", "290-90-35-10"]))
    assert held["verdict"] == HOLDS and "hidden units removed (%) 66 [61, 72]" in held["ours"]
    kept = prunes_units_and_bits(dense, _precision(["780-290-95-10", "784-300-100-10", "770-280-99-10"]))
    assert kept["verdict"] == FAILS
    assert prunes_units_and_bits(dense, None)["verdict"] == NOT_TESTED
