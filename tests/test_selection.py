"""Rules chosen for a target sparsity: the epoch with the best validation accuracy pruned to f among those within
the margin of the best dense one; the states training keeps so that any such rule finds its epoch."""

from __future__ import annotations

import random

import pytest

from bayesprune.config import SELECTION_MARGIN, TARGET_RULES, RunConfig
from bayesprune.training.train import candidate_epochs, chosen_epoch, training_done

from .conftest import small_config


def _history(dense, pruned98):
    return [{"epoch": i + 1, "val_acc": d, "val_acc_pruned": p, "val_acc_pruned98": p}
            for i, (d, p) in enumerate(zip(dense, pruned98))]


def test_the_rule_for_98_takes_the_best_pruned_epoch_inside_the_margin():
    history = _history([0.90, 0.95, 0.97, 0.975, 0.972], [0.80, 0.85, 0.60, 0.50, 0.55])
    assert SELECTION_MARGIN == 0.005  # fixed before the runs: half a point of dense validation accuracy
    assert chosen_epoch(history, "for98") == 3  # epochs 3-5 lie within 0.975 - 0.005; the pruned score picks 3
    assert chosen_epoch(history, "val_acc_pruned") == 2  # the pruned rule alone takes the under-trained epoch 2
    assert chosen_epoch(history, "val_acc") == 4


def test_the_margin_is_honoured_at_its_edge_and_ties_go_to_the_earliest_epoch():
    history = _history([0.970, 0.975, 0.9699], [0.70, 0.60, 0.90])
    assert chosen_epoch(history, "for98") == 1  # 0.970 lies exactly at the margin; 0.9699 does not
    assert chosen_epoch(_history([0.975, 0.975, 0.975], [0.6, 0.7, 0.7]), "for98") == 2


def test_a_rule_chosen_for_a_target_needs_its_record_and_a_validation_split():
    with pytest.raises(ValueError, match="targets: true"):
        RunConfig(validation=100, select="for98")
    with pytest.raises(ValueError, match="validation split"):
        RunConfig(targets=True, select="for98")
    assert TARGET_RULES == ("for90", "for95", "for98", "for99")


def test_training_keeps_every_epoch_a_rule_may_still_choose():
    generator = random.Random(0)
    for _ in range(200):
        epochs = generator.randint(1, 25)
        dense = [round(generator.uniform(0.95, 0.99), 3) for _ in range(epochs)]  # rounded: ties happen
        pruned = [round(generator.uniform(0.3, 0.9), 2) for _ in range(epochs)]
        history, kept = _history(dense, pruned), set()
        for length in range(1, epochs + 1):
            alive = candidate_epochs(history[:length])
            kept = (kept | {length}) & alive
            assert chosen_epoch(history[:length], "for98") in kept  # what the rule picks now is at hand
        assert len(kept) <= epochs


def test_patience_waits_for_the_rules_chosen_for_each_target_too():
    cfg = RunConfig(validation=100, targets=True, patience=2, epochs=50)
    history = _history([0.97, 0.98, 0.979, 0.978], [0.5, 0.4, 0.45, 0.6])
    assert not training_done(cfg, history)  # for98 moved to epoch 4: two more epochs before stopping
    assert training_done(cfg, history + _history([0.976, 0.977], [0.5, 0.5]))


def test_a_run_chosen_for_98_keeps_the_state_of_the_epoch_the_rule_picks(real_data_root, tmp_path):
    from bayesprune.data.datasets import load_split
    from bayesprune.data.splits import split_validation
    from bayesprune.evaluate.scores import pruned_accuracy
    from bayesprune.training.train import train

    cfg = small_config(method="sgd-l1", lr=0.01, epochs=12, validation=500, patience=3, targets=True, select="for98",
                       prior_log_sigma1=-2.0)
    result = train(cfg, out_dir=tmp_path, progress=False)
    epoch = chosen_epoch(result.history, "for98")
    assert {"val_acc_pruned90", "val_acc_pruned95", "val_acc_pruned98", "val_acc_pruned99"} <= set(result.history[0])
    x, y = load_split("mnist", True, real_data_root, "cpu", 255.0, cfg.train_subset)
    _, (x_val, y_val) = split_validation(cfg, x, y)
    assert pruned_accuracy(result.model, x_val, y_val, 0.98) == result.history[epoch - 1]["val_acc_pruned98"]
