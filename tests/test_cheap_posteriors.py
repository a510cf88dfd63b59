"""The cheap-posterior claim: each run read at the sparsity it was chosen for, the rival chosen by validation NLL
(never by the test score it is judged on), BBB's Monte Carlo AUROC against it seed by seed."""

from __future__ import annotations

import pandas as pd

from bayesprune.config import RunConfig
from bayesprune.pipeline.manifest import write_manifest
from bayesprune.report.cheap_posteriors import (cheap_posterior_claim, cheap_rival, claim_reading, claim_sentence,
                                                judged_rows, on_shared_seeds)

SCORES = ("accuracy", "nll", "ece", "auroc_entropy_other")


def _run(root, method: str, seed: int, uncertainty: list[dict], posthoc: list[dict] | None = None,
         **manifest) -> None:
    """A finished run of the for98 variant with its uncertainty (and post-hoc) rows."""
    run = root / "runs" / f"mnist-{method}-corrected-for98-s{seed}"
    run.mkdir(parents=True)
    keys = {"dataset": "mnist", "method": method, "seed": seed, "protocol": "corrected", "variant": "for98"}
    pd.DataFrame([{**keys, **row} for row in uncertainty]).to_csv(run / "uncertainty.csv", index=False)
    if posthoc:
        pd.DataFrame([{**keys, **row} for row in posthoc]).to_csv(run / "posthoc.csv", index=False)
    config = RunConfig(method=method, seed=seed, variant="for98", validation=100, targets=True, select="for98")
    write_manifest({"config": config.to_dict(), "train_seconds": 100.0 * (1 + (method == "bbb")), **manifest}, run)


def _row(criterion: str, fraction: float, prediction: str, auroc: float, **more) -> dict:
    return {"criterion": criterion, "fraction": fraction, "prediction": prediction, "accuracy": 0.98, "nll": 0.1,
            "ece": 0.01, "auroc_entropy_other": auroc, **more}


def _results(tmp_path, bbb_auroc: float):
    for seed, wobble in zip((1, 2, 3), (-0.002, 0.0, 0.002)):
        _run(tmp_path, "bbb", seed, [_row("snr", 0.98, "mc", bbb_auroc + wobble),
                                     _row("snr", 0.98, "deterministic", 0.7),
                                     _row("snr", 0.9, "mc", 0.5),  # a fraction this run was not chosen for
                                     _row("magnitude", 0.98, "mc", 0.5)])  # not BBB's own criterion
        laplace = dict(prediction="laplace", fit_seconds=3.0, predict_seconds=1.0)
        _run(tmp_path, "sgd-l1", seed, [_row("magnitude", 0.98, "deterministic", 0.6)],
             [_row("magnitude", 0.98, "laplace", 0.95 + wobble, posthoc="laplace_last_layer", val_nll=0.2,
                   **{k: v for k, v in laplace.items() if k != "prediction"}),
              _row("magnitude", 0.98, "deterministic", 0.9, posthoc="temperature", val_nll=0.3, fit_seconds=0.1,
                   predict_seconds=0.1)])
        _run(tmp_path, "sgd-l2", seed, [_row("magnitude", 0.98, "deterministic", 0.6)],
             [_row("magnitude", 0.98, "deterministic", 0.80 + wobble, posthoc="temperature", val_nll=0.1,
                   fit_seconds=0.1, predict_seconds=0.1)])
    return judged_rows(tmp_path)


def test_each_run_is_read_at_its_target_by_its_own_criterion(tmp_path):
    rows = _results(tmp_path, 0.9)
    assert set(rows["fraction"]) == {0.98}
    bbb = rows[rows["method"] == "bbb"]
    assert set(bbb["predictive"]) == {"Monte Carlo", "as deployed"} and len(bbb) == 6
    assert set(bbb["train_seconds"]) == {200.0}
    laplace = rows[rows["predictive"] == "Laplace, last layer"]
    assert len(laplace) == 3 and set(laplace["posthoc_seconds"]) == {4.0}


def test_a_run_pruned_from_a_sibling_s_training_costs_that_training(tmp_path):
    sibling = tmp_path / "runs" / "mnist-bbb-corrected-as-trained-s1"
    sibling.mkdir(parents=True)
    config = RunConfig(method="bbb", seed=1, variant="as-trained", validation=100, targets=True)
    write_manifest({"config": config.to_dict(), "train_seconds": 321.0, "run": sibling.name}, sibling)
    _run(tmp_path, "bbb", 1, [_row("snr", 0.98, "mc", 0.9)], train_seconds=0.0, trained_in=sibling.name)
    assert set(judged_rows(tmp_path)["train_seconds"]) == {321.0}


def test_the_rival_is_the_lowest_validation_nll_not_the_best_test_score(tmp_path):
    rows = _results(tmp_path, 0.9)
    assert cheap_rival(rows, "mnist", 0.98) == ("sgd-l2", "temperature-scaled")  # test would pick L1's Laplace
    claim = cheap_posterior_claim(rows)
    assert [cell["verdict"] for cell in claim["cells"]] == ["holds"]  # 0.90 against 0.80, not against 0.95
    assert abs(claim["cells"][0]["gap"].mean - 0.1) < 1e-9
    reading = claim_reading(claim)
    assert "- MNIST, 98 % pruned: BBB's AUROC minus that of SGD + L2, temperature-scaled: 0.100" in reading
    assert reading.endswith("Overall: holds.")
    assert claim_sentence(claim).endswith("BBB's posterior tells the other dataset apart better on MNIST at 98 %.")


def test_the_claim_fails_where_bbb_is_below_and_is_inconclusive_within_noise(tmp_path):
    rows = _results(tmp_path / "below", 0.7)
    assert cheap_posterior_claim(rows)["verdict"] == "does not hold"
    assert claim_sentence(cheap_posterior_claim(rows)).endswith("apart worse on MNIST at 98 %.")
    rows = _results(tmp_path / "level", 0.8)
    assert cheap_posterior_claim(rows)["verdict"] == "inconclusive"
    assert claim_sentence(cheap_posterior_claim(rows)).endswith("neither better nor worse by its interval on MNIST at 98 %.")
    assert claim_sentence({"cells": [], "verdict": "not tested"}).startswith("No cheap posterior")


def test_the_table_and_the_figure_show_every_predictive_with_its_cost(tmp_path):
    from bayesprune.report.cheap_posteriors import cheap_posterior_table
    from bayesprune.report.formatting import short_seconds
    from bayesprune.report.plots import cheap_posterior_figure

    rows = _results(tmp_path, 0.9)
    table = cheap_posterior_table(rows, "mnist")
    assert set(table["predictive"]) == {"Monte Carlo", "as deployed", "temperature-scaled", "Laplace, last layer"}
    laplace = table[table["predictive"] == "Laplace, last layer"].iloc[0]
    assert laplace["AUROC, other data"] == "0.950 ± 0.002" and laplace["post-hoc (s)"] == "4"
    assert len(table.columns) <= 9
    fig = cheap_posterior_figure(rows)
    panel = fig.axes[0]
    assert panel.get_xscale() == "log" and len(panel.lines) == len(table)  # one marker per method and predictive
    assert "BBB" in [text.get_text() for text in fig.legends[0].get_texts()]
    deployed_only = rows[rows["predictive"] == "as deployed"].assign(fraction=0.95)  # no cheap posterior fitted there
    fig = cheap_posterior_figure(pd.concat([rows, deployed_only], ignore_index=True))
    assert [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.lines] == ["MNIST, 98 % pruned"]
    assert not any(label.get_text() for label in fig.axes[0].xaxis.get_minorticklabels())  # no crowded minor labels
    fig.canvas.draw()
    assert max(len(label.get_text()) for label in fig.axes[0].xaxis.get_majorticklabels()) <= 3  # "10000" crowded
    assert [short_seconds(v) for v in (200, 1000, 5000, 10000)] == ["200", "1k", "5k", "10k"]


def test_a_cell_is_judged_on_the_seeds_every_method_in_it_shares(tmp_path):
    _results(tmp_path, 0.9)
    _run(tmp_path, "bbb", 4, [_row("snr", 0.98, "mc", 0.2)])  # a seed the rivals have not trained yet
    rows = judged_rows(tmp_path)
    assert set(on_shared_seeds(rows)["seed"]) == {1, 2, 3}
    cell = cheap_posterior_claim(rows)["cells"][0]
    assert cell["gap"].seeds == 3 and abs(cell["gap"].mean - 0.1) < 1e-9  # seed 4's 0.2 left out
