"""Fault scenarios: each checks that nothing is lost or silently wrong, then records what happened.

The record (results/reliability/record.json) is the source of the book's reliability appendix.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import papermill
import pytest
import torch
import yaml

from bayesprune.data.datasets import SHA256, raw_dir
from bayesprune.model.models import MLP
from bayesprune.compress.prune import global_prune
from bayesprune.pipeline.execute import NOTEBOOKS
from bayesprune.pipeline.lock import lock_holder_pid
from bayesprune.pipeline.manifest import ResultsIntegrityError
from bayesprune.pipeline.profiles import load_profiles
from bayesprune.pipeline.results import load_table
from bayesprune.pipeline.run_paths import RunPaths
from bayesprune.pipeline.runner import run_grid
from bayesprune.training.checkpoint import save_checkpoint
from bayesprune.training.train import CHECKPOINT, train

from .conftest import small_config

pytestmark = pytest.mark.reliability
TINY = {"epochs": 2, "lr": 0.001, "hidden": [16], "train_subset": 500, "test_subset": 200, "eval_samples": 2,
        "device": "cpu"}
SLOW = {**TINY, "epochs": 12, "hidden": [64, 64], "train_subset": 2000}  # long enough to be killed mid-run
TABLES = ("history", "pruning", "weights", "weight_histogram")


def _profiles(tmp_path: Path, methods: list[str], config: dict, name: str = "tiny", seeds: tuple[int, ...] = (0,)) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump({name: {"datasets": ["mnist"], "methods": methods, "seeds": list(seeds),
                                           "fractions": [0.0, 0.9], "config": config}}))
    return path


def _cli(profiles: Path, results: Path, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "BAYESPRUNE_PROFILES": str(profiles)}
    return subprocess.Popen([sys.executable, "-m", "bayesprune.cli", "run", "--profile", "tiny",
                             "--results", str(results), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def _assert_same_tables(a: Path, b: Path) -> None:
    for run in sorted(p.name for p in a.iterdir() if not p.name.startswith(".")):
        for table in TABLES:
            left, right = pd.read_csv(a / run / f"{table}.csv"), pd.read_csv(b / run / f"{table}.csv")
            pd.testing.assert_frame_equal(left.drop(columns="seconds", errors="ignore"),
                                          right.drop(columns="seconds", errors="ignore"))


@pytest.mark.slow
def test_runner_killed_mid_grid_resumes_without_redoing_finished_runs(real_data_root, tmp_path, record):
    profiles = _profiles(tmp_path, ["bbb"], SLOW, seeds=(0, 1))
    runs = tmp_path / "results" / "tiny" / "runs"
    process = _cli(profiles, tmp_path / "results", "--jobs", "1", start_new_session=True)  # seed 0, then seed 1
    _wait_for(RunPaths(runs, "mnist-bbb-corrected-s1").partial / CHECKPOINT, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = runs / "mnist-bbb-corrected-s0" / "manifest.json"
    stamp = finished.stat().st_mtime_ns
    epochs_before = torch.load(RunPaths(runs, "mnist-bbb-corrected-s1").partial / CHECKPOINT, weights_only=True)["epoch"]
    resumed = _cli(profiles, tmp_path / "results", "--jobs", "1")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    assert "1 run(s) finished, 1 already done" in output and finished.stat().st_mtime_ns == stamp
    unbroken = run_grid(load_profiles(profiles)["tiny"], tmp_path / "unbroken", progress=False)
    assert unbroken.ok
    _assert_same_tables(runs, tmp_path / "unbroken" / "tiny" / "runs")
    assert 1 <= epochs_before < SLOW["epochs"]
    record("runner killed (kill -9) mid-grid", "bayesprune run",
           "finished run kept and skipped; the killed run resumed from its last epoch checkpoint; "
           "every table equal to an unbroken grid")


@pytest.mark.slow
def test_ray_worker_killed_mid_run_is_retried_and_finishes_once(real_data_root, tmp_path, monkeypatch, record):
    profiles = _profiles(tmp_path, ["bbb"], SLOW)
    runs = tmp_path / "results" / "tiny" / "runs"
    process = _cli(profiles, tmp_path / "results", "--executor", "ray")
    _wait_for(RunPaths(runs, "mnist-bbb-corrected-s0").partial / CHECKPOINT, process, 600)
    worker = lock_holder_pid(RunPaths(runs, "mnist-bbb-corrected-s0").lock)
    assert worker is not None and worker != process.pid
    os.kill(worker, signal.SIGKILL)
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output
    assert "1 run(s) finished" in output
    history = pd.read_csv(runs / "mnist-bbb-corrected-s0" / "history.csv")
    assert history["epoch"].tolist() == list(range(1, SLOW["epochs"] + 1))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray gives a task with one CPU: same reduction order
    unbroken = run_grid(load_profiles(profiles)["tiny"], tmp_path / "unbroken", progress=False)
    assert unbroken.ok
    _assert_same_tables(runs, tmp_path / "unbroken" / "tiny" / "runs")
    record("Ray worker killed (kill -9) mid-run", "bayesprune run --executor ray",
           "Ray retried the task in a new worker, which resumed from the run's last epoch checkpoint; "
           "one finished run, tables equal to an unbroken run")


@pytest.mark.slow
def test_two_runners_on_one_results_folder_never_share_a_run(real_data_root, tmp_path, record):
    profiles = _profiles(tmp_path, ["bbb"], SLOW)
    runs = tmp_path / "results" / "tiny" / "runs"
    first = _cli(profiles, tmp_path / "results")
    _wait_for(RunPaths(runs, "mnist-bbb-corrected-s0").partial / CHECKPOINT, first)
    second = _cli(profiles, tmp_path / "results")
    output = second.communicate(timeout=120)[0]
    assert second.returncode == 1
    assert "BUSY mnist-bbb-corrected-s0 is being executed by another runner (pid" in output
    assert first.communicate(timeout=600)[0] and first.returncode == 0
    assert load_table(tmp_path / "results" / "tiny", "pruning")["accuracy_mean"].notna().all()
    busy = re.sub(r"pid \d+ on \S+\)", "pid N on HOST)", output.strip().splitlines()[-1].strip())
    record("two runners on one results folder", "bayesprune run (twice)",
           busy + "; exit status 1 (the first runner finished the run)")


@pytest.mark.parametrize("damage", ["truncated", "with one flipped byte"])
def test_damaged_data_is_refused_before_training(mnist_copy, tmp_path, damage, record):
    path = raw_dir("mnist", mnist_copy) / "train-images-idx3-ubyte"
    blob = path.read_bytes()
    path.write_bytes(blob[:-1000] if damage == "truncated" else blob[:5000] + bytes([blob[5000] ^ 1]) + blob[5001:])
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "bayesprune.cli", "--data-dir", str(mnist_copy), "train",
                           "--epochs", "1", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(path) in done.stderr and SHA256["mnist"]["train-images-idx3-ubyte"] in done.stderr
    assert "bayesprune data fetch" in done.stderr and not (out / CHECKPOINT).exists()
    record(f"data file {damage}", "bayesprune train", done.stderr.replace(str(mnist_copy), "<data>"))


def test_damaged_checkpoint_is_set_aside_and_the_run_retrains(real_data_root, tmp_path, record):
    cfg = small_config(epochs=2)
    train(small_config(epochs=1), out_dir=tmp_path / "unused", progress=False)
    (tmp_path / CHECKPOINT).write_bytes(b"\x80\x02not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        result = train(cfg, out_dir=tmp_path, progress=False)
    unbroken = train(cfg, progress=False)
    assert [r["test_acc"] for r in result.history] == [r["test_acc"] for r in unbroken.history]
    assert (tmp_path / f"{CHECKPOINT}.damaged").read_bytes().endswith(b"not a checkpoint")
    record("checkpoint damaged", "train (notebook or CLI)",
           "detected on load, set aside as checkpoint.pt.damaged; training restarted from epoch 1 "
           "and ended equal to an unbroken run")


def _finished_grid(tmp_path: Path) -> tuple[Path, object]:
    profile = load_profiles(_profiles(tmp_path, ["sgd"], TINY))["tiny"]
    assert run_grid(profile, tmp_path / "results", progress=False).ok
    return tmp_path / "results" / "tiny", profile


@pytest.mark.slow
def test_partly_written_results_file_is_never_read_and_the_run_is_redone(real_data_root, tmp_path, record):
    results, profile = _finished_grid(tmp_path)
    table = results / "runs" / "mnist-sgd-corrected-s0" / "pruning.csv"
    good = table.read_text()
    table.write_text(good[: len(good) // 2])
    with pytest.raises(ResultsIntegrityError, match="pruning.csv does not match its manifest") as error:
        load_table(results, "pruning")
    redo = run_grid(profile, tmp_path / "results", progress=False)
    assert redo.finished == ["mnist-sgd-corrected-s0"] and table.read_text() == good
    record("results file partly written", "load_table / bayesprune run",
           f"{str(error.value).split(' (')[0].replace(str(results), '<results>')}: refused; the next run "
           "redid that run and restored the same table")


@pytest.mark.slow
def test_partly_written_manifest_makes_the_run_unfinished(real_data_root, tmp_path, record):
    results, profile = _finished_grid(tmp_path)
    manifest = results / "runs" / "mnist-sgd-corrected-s0" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(ResultsIntegrityError, match="manifest.json is damaged"):
        load_table(results, "history")
    redo = run_grid(profile, tmp_path / "results", progress=False)
    assert redo.finished == ["mnist-sgd-corrected-s0"] and json.loads(manifest.read_text())["files"]
    record("manifest partly written", "load_table / bayesprune run",
           "manifest.json is damaged: refused by every reader; the next run redid the run")


def test_disk_full_while_writing_keeps_the_previous_file(real_data_root, tmp_path, monkeypatch, record):
    path = tmp_path / CHECKPOINT
    save_checkpoint({"epoch": 1}, path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"epoch": 2}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]
    record("disk full while writing", "every file the project writes (atomic_write)",
           "OSError: No space left on device; the previous checkpoint intact, no temporary file left")


def test_nan_loss_stops_the_run_with_no_result_row(real_data_root, tmp_path, record):
    profile = load_profiles(_profiles(tmp_path, ["sgd"], {**SLOW, "optimizer": "sgd", "lr": 1e6}))["tiny"]
    summary = run_grid(profile, tmp_path / "results", progress=False)
    assert [run for run, _, _ in summary.failed] == ["mnist-sgd-corrected-s0"]
    runs = tmp_path / "results" / "tiny" / "runs"
    assert not (runs / "mnist-sgd-corrected-s0").exists() and not list(runs.rglob("pruning.csv"))
    assert "non-finite loss" in summary.failed[0][2]
    record("NaN loss", "bayesprune run (lr = 1e6)", summary.failed[0][2])


BAD_CLI = [
    (["run", "--profile", "smoke", "--datasets", "cifar10"], "unknown dataset 'cifar10'; valid choices: mnist, fashion-mnist"),
    (["run", "--profile", "nope"], "unknown profile 'nope'; valid choices"),
    (["run", "--profile", "smoke", "--executor", "slurm"], "unknown executor 'slurm'; valid choices: local, ray"),
    (["run", "--profile", "smoke", "--jobs", "0"], "jobs must be an integer >= 1"),
    (["train", "--dataset", "cifar10"], "unknown dataset 'cifar10'; valid choices: mnist, fashion-mnist"),
    (["train", "--method", "adagrad"], "unknown method 'adagrad'; valid choices: sgd, bbb, sparsevd, dropout<p>"),
    (["train", "--protocol", "paper"], "unknown protocol 'paper'; valid choices: corrected, study, custom"),
    (["train", "--epochs", "0"], "epochs must be an integer >= 1, got 0"),
    (["train", "--lr", "0"], "lr must be > 0, got 0.0"),
]


@pytest.mark.parametrize(("args", "message"), BAD_CLI, ids=[" ".join(a) for a, _ in BAD_CLI])
def test_bad_cli_arguments_are_clear_errors_before_any_work(tmp_path, args, message, record):
    done = subprocess.run([sys.executable, "-m", "bayesprune.cli", *args[:1], *args[1:]],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()
    record(f"bad argument: bayesprune {' '.join(args)}", "CLI", done.stderr)


BAD_PROFILES = [
    ({"config": {"epoch": 3}}, "unknown config keys ['epoch']; valid keys"),
    ({"methods": ["sgd", "bbbb"]}, "unknown method 'bbbb'; valid choices"),
    ({"datasets": ["kmnist"]}, "unknown dataset 'kmnist'; valid choices"),
    ({"protocols": ["faithful"]}, "unknown protocol 'faithful'; valid choices"),
    ({"fractions": [0.5, 1.0]}, "pruning fraction must be in [0, 1), got 1.0"),
    ({"config": {"lr": -1}}, "lr must be > 0, got -1"),
    ({"method_config": {"bbb": {"lr": 0.1}}}, "configures method 'bbb', which it does not run; valid choices: sgd"),
    ({"variants": {"fast": {"lrr": 0.1}}}, "unknown config keys ['lrr']; valid keys"),
    ({"finetune_epochs": -2}, "finetune_epochs must be an integer >= 0, got -2"),
    ({"finetune_rates": [1.0, 0.0]}, "finetune_rates must be factors > 0 of the training rate, got [1.0, 0.0]"),
    ({"config": {"kl_warmup": 1.5}}, "kl_warmup must be an integer >= 0 (epochs), got 1.5"),
    ({"posthoc_fractions": [0.9]}, "posthoc_fractions choose on a validation split, and no run has one"),
    ({"ensembles": ["sgd"]}, "an ensemble needs 5 seeds and the posthoc_fractions to score it at; got 1 seeds"),
]


@pytest.mark.parametrize(("change", "message"), BAD_PROFILES, ids=[m.split(";")[0] for _, m in BAD_PROFILES])
def test_bad_profile_entries_are_rejected_when_the_file_is_read(tmp_path, change, message, record):
    entry = {"datasets": ["mnist"], "methods": ["sgd"], "seeds": [0], "fractions": [0.5], **change}
    path = tmp_path / "profiles.yml"
    path.write_text(yaml.safe_dump({"typo": entry}))
    with pytest.raises(ValueError) as error:
        load_profiles(path)
    assert message in str(error.value)
    record(f"bad profile entry: {json.dumps(change)}", "profiles.yml", str(error.value))


BAD_NOTEBOOK_PARAMETERS = [
    ("train", {"config": {"method": "bbbb"}}, "unknown method 'bbbb'; valid choices"),
    ("train", {"config": {"epochs": 0}}, "epochs must be an integer >= 1"),
    ("train", {"config": {"epoch": 3}}, "unknown config keys ['epoch']; valid keys:"),
    ("prune", {"fractions": [0.5, 1.5]}, "pruning fraction must be in [0, 1), got 1.5"),
    ("prune", {"finetune_epochs": -1}, "finetune_epochs must be an integer >= 0, got -1"),
]


@pytest.mark.parametrize(("notebook", "parameters", "message"), BAD_NOTEBOOK_PARAMETERS,
                         ids=[f"{n} {p}" for n, p, _ in BAD_NOTEBOOK_PARAMETERS])
def test_bad_papermill_parameters_fail_before_any_work(tmp_path, notebook, parameters, message, record):
    output = tmp_path / f"{notebook}.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as error:
        papermill.execute_notebook(str(NOTEBOOKS / f"{notebook}.ipynb"), str(output),
                                   parameters={"run_dir": str(tmp_path / "run"), **parameters},
                                   kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOKS))
    assert message in error.value.evalue
    assert error.value.exec_count <= 4  # parameters, injected parameters, imports, the first library call
    assert not (tmp_path / "run" / CHECKPOINT).exists()
    record(f"bad papermill -p: {notebook} {json.dumps(parameters)}", "papermill", error.value.evalue)


def test_unknown_pruning_criterion_names_the_valid_ones(record):
    with pytest.raises(ValueError, match="valid choices: magnitude") as error:
        global_prune(MLP([4, 3, 2]), 0.5, "lottery")
    record("bad argument: pruning criterion 'lottery'", "global_prune", str(error.value))
