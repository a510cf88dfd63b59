"""The training loop: learns, is reproducible, resumes after a kill, stops on a non-finite loss."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bayesprune.config import RunConfig
from bayesprune.evaluate.scores import evaluate, pruning_sweep
from bayesprune.training.checkpoint import CheckpointError, load_checkpoint
from bayesprune.training.train import CHECKPOINT, train

from .conftest import small_config


def _without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


@pytest.mark.parametrize("method", ["sgd", "dropout0.5", "bbb"])
def test_a_few_hundred_steps_lower_the_loss(real_data_root, method):
    cfg = small_config(method=method, epochs=10)  # 20 steps an epoch: 200 steps
    history = train(cfg, progress=False).history
    assert history[-1]["nll"] < 0.6 * history[0]["nll"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["test_acc"] > 0.8


@pytest.mark.slow  # a minute of training; make test-slow runs it
@pytest.mark.parametrize("method", ["dropout0.5", "bbb"])
def test_same_seed_same_history(real_data_root, method):
    first = train(small_config(method=method), progress=False)
    second = train(small_config(method=method), progress=False)
    assert _without_seconds(first.history) == _without_seconds(second.history)
    other = train(small_config(method=method, seed=1), progress=False)
    assert _without_seconds(other.history) != _without_seconds(first.history)


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_interrupted_run_resumes_to_the_same_final_state(real_data_root, tmp_path):
    cfg = small_config(method="bbb", epochs=4)
    unbroken = train(cfg, progress=False)

    def interrupt(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, out_dir=tmp_path, progress=False, on_epoch_end=interrupt)
    assert load_checkpoint(tmp_path / CHECKPOINT)["epoch"] == 2
    resumed = train(cfg, out_dir=tmp_path, progress=False)
    assert _without_seconds(resumed.history) == _without_seconds(unbroken.history)
    _assert_same_state(resumed.model, unbroken.model)


def test_run_killed_with_sigkill_resumes_from_its_checkpoint(real_data_root, tmp_path):
    args = ["--method", "sgd", "--epochs", "30", "--lr", "0.001", "--hidden", "64", "64",
            "--train-subset", "2000", "--test-subset", "1000", "--device", "cpu"]
    process = subprocess.Popen([sys.executable, "-m", "bayesprune.cli", "train", *args, "--out", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / CHECKPOINT
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = load_checkpoint(checkpoint)["epoch"]
    assert 1 <= done < 30, "the run should have been killed part-way"
    cfg = small_config(epochs=30)
    resumed = train(cfg, out_dir=tmp_path, progress=False)
    unbroken = train(cfg, progress=False)
    assert _without_seconds(resumed.history) == _without_seconds(unbroken.history)
    _assert_same_state(resumed.model, unbroken.model)


def test_checkpoint_loads_with_weights_only_and_guards_its_config(real_data_root, tmp_path):
    train(small_config(epochs=1), out_dir=tmp_path, progress=False)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["epoch"] == 1 and state["config"]["method"] == "sgd"
    with pytest.raises(CheckpointError, match="another configuration"):
        train(small_config(epochs=1, lr=0.5), out_dir=tmp_path, progress=False)


def test_non_finite_loss_stops_the_run_and_saves_nothing(real_data_root, tmp_path):
    cfg = small_config(optimizer="sgd", lr=1e6, epochs=2)
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        train(cfg, out_dir=tmp_path, progress=False)
    assert not (tmp_path / CHECKPOINT).exists()


def test_evaluation_reports_mean_and_ensemble_for_bbb_only(real_data_root):
    result = train(small_config(method="bbb", epochs=5), progress=False)
    sgd = train(small_config(epochs=2), progress=False)
    from bayesprune.data.datasets import load_split

    x, y = load_split("mnist", train=False, root=real_data_root, subset=1000)
    bbb_scores = evaluate(result.model, x, y, samples=5)
    assert 0.7 < bbb_scores["accuracy_mean"] <= 1 and 0.7 < bbb_scores["accuracy_ensemble"] <= 1
    assert evaluate(sgd.model, x, y)["accuracy_ensemble"] is None
    rows = pruning_sweep(result.model, x, y, [0.0, 0.5, 0.99], samples=3)
    assert [(r["criterion"], r["fraction"]) for r in rows] == [
        ("snr", 0.0), ("snr", 0.5), ("snr", 0.99), ("magnitude", 0.0), ("magnitude", 0.5), ("magnitude", 0.99),
        ("unit_snr", 0.0), ("unit_snr", 0.5), ("unit_snr", 0.99)]  # whole units by their group SNR too
    assert rows[0]["accuracy_mean"] == bbb_scores["accuracy_mean"]
    assert rows[2]["accuracy_mean"] < rows[0]["accuracy_mean"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset": "cifar10"}, "valid choices: mnist, fashion-mnist"),
        ({"method": "adamw"}, "valid choices: sgd, bbb, sparsevd, dropout<p>"),
        ({"method": "dropout1.5"}, "valid choices: sgd, bbb, sparsevd, dropout<p>"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"optimizer": "rmsprop"}, "valid choices: adam, sgd"),
        ({"kl_weighting": "stduy"}, "valid choices: blundell, uniform, study"),
        ({"protocol": "paper"}, "valid choices: corrected, study, custom"),
        ({"protocol": "custom", "deviations": ("entropy",)}, "unknown deviations \\['entropy'\\]; valid choices: pruning_detached"),
        ({"validation": -1}, "validation and patience must be >= 0"),
        ({"patience": 5}, "early stopping .patience > 0. needs a validation split"),
        ({"train_subset": 1000, "validation": 1000}, "validation .1000. must be smaller than train_subset .1000."),
        ({"init_rho": (-4.0, -5.0)}, "init_rho must be a finite range .low, high. with low <= high"),
        ({"init_rho": (-4.0,)}, "init_rho must be a range .low, high."),
        ({"init_mu": -0.1}, "init_mu must be a finite number >= 0"),
        ({"variant": "a b"}, "variant must be a name of letters"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_choices(overrides, message):
    with pytest.raises(ValueError, match=message.replace("<", ".").replace(">", ".")):
        RunConfig(**overrides)


def test_unknown_config_keys_are_rejected():
    with pytest.raises(ValueError, match="unknown config keys \\['epoch'\\]"):
        RunConfig.from_dict({"epoch": 3})


def test_cli_reports_bad_arguments_without_a_traceback(real_data_root):
    done = subprocess.run([sys.executable, "-m", "bayesprune.cli", "train", "--dataset", "svhn"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown dataset 'svhn'; valid choices: mnist, fashion-mnist" in done.stderr
    assert "Traceback" not in done.stderr


def test_validation_images_are_held_out_of_training(real_data_root):
    from bayesprune.data.datasets import load_split
    from bayesprune.data.splits import split_validation

    cfg = small_config(validation=500)
    x, y = load_split("mnist", True, real_data_root, "cpu", 255.0, cfg.train_subset)
    (x_fit, y_fit), (x_val, y_val) = split_validation(cfg, x, y)
    assert len(x_fit) == 1500 and len(x_val) == 500
    assert torch.equal(x_val, x[1500:]) and torch.equal(y_fit, y[:1500])
    history = train(cfg, progress=False).history
    assert all(0.0 < record["val_acc"] <= 1.0 and record["val_nll"] > 0 for record in history)


def test_early_stopping_keeps_the_best_validation_epoch(real_data_root, tmp_path):
    from bayesprune.data.datasets import load_split
    from bayesprune.data.splits import split_validation
    from bayesprune.evaluate.scores import accuracy, mean_logits
    from bayesprune.training.train import best_epoch, training_done

    cfg = small_config(method="sgd", lr=0.05, epochs=30, validation=500, patience=2)
    result = train(cfg, out_dir=tmp_path, progress=False)
    history = result.history
    best = best_epoch(history)
    assert len(history) == best + 2 < 30  # stopped two epochs after the best, before the cap
    assert training_done(cfg, history)
    x, y = load_split("mnist", True, real_data_root, "cpu", 255.0, cfg.train_subset)
    _, (x_val, y_val) = split_validation(cfg, x, y)
    assert accuracy(mean_logits(result.model, x_val), y_val) == history[best - 1]["val_acc"]
    again = train(cfg, out_dir=tmp_path, progress=False)  # a finished run resumes to the same best model
    assert len(again.history) == len(history)
    _assert_same_state(again.model, result.model)


def test_bbb_history_records_the_posterior_diagnostics(real_data_root):
    cfg = small_config(method="bbb", epochs=3, lr=3e-2, kl_weighting="uniform", validation=500)
    history = train(cfg, progress=False).history
    last = history[-1]
    assert last["sigma_q05"] <= last["sigma_q50"] <= last["sigma_q95"]
    assert 0.0 < last["sigma_moved"] <= 1.0  # 45 Adam steps of 3e-2 can move rho by more than log 2
    assert last["complexity_per_weight"] > 0 and last["mu_abs_mean"] > 0
    start = train(small_config(method="bbb", epochs=1, lr=1e-6, validation=500), progress=False).history[0]
    assert start["sigma_moved"] == 0.0  # a learning rate that cannot move them


def test_the_initialisation_follows_the_config():
    import torch.nn.functional as F

    from bayesprune.model.models import build_model

    model = build_model(RunConfig(method="bbb", init_mu=0.05, init_rho=(-3.0, -2.0), hidden=(50,)))
    for layer in model.layers:
        assert layer.weight_mu.abs().max() <= 0.05 and layer.weight_mu.abs().max() > 0.045
        assert layer.weight_rho.min() >= -3.0 and layer.weight_rho.max() <= -2.0
    study = build_model(RunConfig(method="bbb", hidden=(50,)))
    expected = math.exp(-4) - math.exp(-5)  # E softplus(rho) for rho ~ U(-5, -4), softplus(r) ~ e^r this far out
    assert F.softplus(study.layers[0].weight_rho).mean().item() == pytest.approx(expected, rel=0.02)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bayesprune.cli", *args], capture_output=True, text=True)


TINY_CLI = ("--dataset", "mnist", "--train-subset", "200", "--test-subset", "100", "--hidden", "8", "--epochs", "1")


def test_cli_reports_a_checkpoint_of_another_configuration_in_one_line(real_data_root, tmp_path):
    assert _cli("train", *TINY_CLI, "--out", str(tmp_path)).returncode == 0
    done = _cli("train", *TINY_CLI, "--lr", "0.01", "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "written by another configuration" in done.stderr


def test_cli_reports_a_non_finite_loss_in_one_line(real_data_root):
    done = _cli("train", *TINY_CLI, "--optimizer", "sgd", "--lr", "1e30")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("bayesprune: error: non-finite loss (nan) in epoch 1")


def test_cli_reports_a_failed_recheck_in_one_line(real_data_root, tmp_path):
    from bayesprune.pipeline.manifest import write_manifest

    cfg = small_config(optimizer="sgd", lr=1e30, epochs=1, hidden=(8,))  # retraining it hits a non-finite loss
    run_dir = tmp_path / "smoke" / "runs" / "broken"
    run_dir.mkdir(parents=True)
    write_manifest({"config": cfg.to_dict()}, run_dir)
    done = _cli("recheck", "--profile", "smoke", "--results", str(tmp_path), "--scratch", str(tmp_path / "scratch"),
                "broken")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ended failed" in done.stderr and "non-finite loss" in done.stderr


def test_learning_rate_schedules_hold_the_rate_then_decay_towards_zero():
    from bayesprune.config import schedule_factor

    assert [schedule_factor("constant", e, 4) for e in range(4)] == [1.0] * 4
    assert [schedule_factor("linear", e, 4, 0.5) for e in range(4)] == [1.0, 1.0, 1.0, 0.5]
    cosine = [schedule_factor("cosine", e, 4) for e in range(4)]
    assert cosine[0] == 1.0 and cosine == sorted(cosine, reverse=True) and cosine[-1] > 0
    cfg = RunConfig(epochs=200, lr=1e-3, lr_schedule="linear", lr_decay_start=100)  # Molchanov et al.'s Sparse VD
    assert cfg.lr_at(99) == 1e-3 and cfg.lr_at(150) == pytest.approx(5e-4) and cfg.lr_at(199) == pytest.approx(1e-5)
    assert cfg.lr_at(3, epochs=4) == pytest.approx(5e-4)  # fine-tuning: the same shape over its epochs
    with pytest.raises(ValueError, match="lr_schedule"):
        RunConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="lr_decay_start"):
        RunConfig(epochs=10, lr_schedule="linear", lr_decay_start=10)


def test_training_follows_the_schedule_and_a_resumed_run_keeps_it(real_data_root, tmp_path):
    cfg = small_config(epochs=4, lr_schedule="linear", lr_decay_start=2)
    unbroken = train(cfg, progress=False)
    assert [round(r["lr"], 6) for r in unbroken.history] == [1e-3, 1e-3, 1e-3, 5e-4]

    def interrupt(record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, out_dir=tmp_path, progress=False, on_epoch_end=interrupt)
    resumed = train(cfg, out_dir=tmp_path, progress=False)
    assert _without_seconds(resumed.history) == _without_seconds(unbroken.history)
    constant = train(small_config(epochs=4), progress=False)
    assert _without_seconds(constant.history)[:3] == [
        {k: v for k, v in r.items()} for r in _without_seconds(unbroken.history)[:3]]
    assert constant.history[3]["loss"] != unbroken.history[3]["loss"]
