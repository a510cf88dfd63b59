"""The training loop: learns, is reproducible, resumes after a kill, stops on a non-finite loss."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bayesprune.checkpoint import CheckpointError, load_checkpoint
from bayesprune.config import RunConfig
from bayesprune.evaluate import evaluate, pruning_sweep
from bayesprune.train import CHECKPOINT, train

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
    from bayesprune.data import load_split

    x, y = load_split("mnist", train=False, root=real_data_root, subset=1000)
    bbb_scores = evaluate(result.model, x, y, samples=5)
    assert 0.7 < bbb_scores["accuracy_mean"] <= 1 and 0.7 < bbb_scores["accuracy_ensemble"] <= 1
    assert evaluate(sgd.model, x, y)["accuracy_ensemble"] is None
    rows = pruning_sweep(result.model, x, y, [0.0, 0.5, 0.99], samples=3)
    assert [(r["criterion"], r["fraction"]) for r in rows] == [
        ("snr", 0.0), ("snr", 0.5), ("snr", 0.99), ("magnitude", 0.0), ("magnitude", 0.5), ("magnitude", 0.99)]
    assert rows[0]["accuracy_mean"] == bbb_scores["accuracy_mean"]
    assert rows[2]["accuracy_mean"] < rows[0]["accuracy_mean"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset": "cifar10"}, "valid choices: mnist, fashion-mnist"),
        ({"method": "adamw"}, "valid choices: sgd, bbb, dropout<p>"),
        ({"method": "dropout1.5"}, "valid choices: sgd, bbb, dropout<p>"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"optimizer": "rmsprop"}, "valid choices: adam, sgd"),
        ({"kl_weighting": "stduy"}, "valid choices: blundell, uniform, study"),
        ({"protocol": "paper"}, "valid choices: corrected, study, custom"),
        ({"protocol": "custom", "deviations": ("entropy",)}, "unknown deviations \\['entropy'\\]; valid choices: pruning_detached"),
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
