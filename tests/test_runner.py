"""The grid runner: atomic runs, skip when finished, resume after kill -9, failures kept and reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bayesprune.profiles import load_profiles
from bayesprune.runner import run_grid

TINY = {"epochs": 2, "lr": 0.001, "hidden": [16], "train_subset": 500, "test_subset": 200, "eval_samples": 2,
        "device": "cpu"}


def _profiles_file(tmp_path: Path, **profiles) -> Path:
    path = tmp_path / "profiles.yml"
    path.write_text(yaml.safe_dump(profiles))
    return path


def _profile(tmp_path: Path, methods, config=TINY, name="tiny"):
    entry = {"datasets": ["mnist"], "methods": methods, "seeds": [0], "fractions": [0.0, 0.9], "config": config}
    return load_profiles(_profiles_file(tmp_path, **{name: entry}))[name]


def _cli(tmp_path: Path, profiles: Path, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "BAYESPRUNE_PROFILES": str(profiles)}
    return subprocess.Popen([sys.executable, "-m", "bayesprune.cli", "run", *args, "--results", str(tmp_path / "results")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_finished_runs_are_skipped_and_tables_are_tidy(real_data_root, tmp_path):
    profile = _profile(tmp_path, ["sgd"])
    first = run_grid(profile, tmp_path / "results", progress=False)
    assert first.finished == ["mnist-sgd-corrected-s0"] and not first.failed
    run_dir = tmp_path / "results" / "tiny" / "runs" / "mnist-sgd-corrected-s0"
    stamp = (run_dir / "manifest.json").stat().st_mtime_ns
    second = run_grid(profile, tmp_path / "results", progress=False)
    assert second.skipped == ["mnist-sgd-corrected-s0"] and not second.finished
    assert (run_dir / "manifest.json").stat().st_mtime_ns == stamp
    pruning = pd.read_csv(run_dir / "pruning.csv")
    assert list(pruning.columns) == ["dataset", "method", "seed", "protocol", "criterion", "fraction",
                                     "achieved_sparsity", "accuracy_mean", "accuracy_ensemble"]
    assert pruning["accuracy_ensemble"].isna().all()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["method"] == "sgd" and manifest["libraries"]["torch"]
    assert not list(run_dir.parent.glob(".*.partial"))


def test_a_changed_configuration_is_retrained(real_data_root, tmp_path):
    run_grid(_profile(tmp_path, ["sgd"]), tmp_path / "results", progress=False)
    changed = run_grid(_profile(tmp_path, ["sgd"], {**TINY, "epochs": 3}), tmp_path / "results", progress=False)
    assert changed.finished == ["mnist-sgd-corrected-s0"]


def test_killed_grid_resumes_mid_run_and_matches_an_unbroken_one(real_data_root, tmp_path):
    config = {**TINY, "epochs": 15, "hidden": [64, 64], "train_subset": 2000}
    profiles = _profiles_file(tmp_path, tiny={"datasets": ["mnist"], "methods": ["bbb"], "seeds": [0],
                                              "fractions": [0.0, 0.9], "config": config})
    process = _cli(tmp_path, profiles, "--profile", "tiny", start_new_session=True)
    checkpoint = tmp_path / "results" / "tiny" / "runs" / ".mnist-bbb-corrected-s0.partial" / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), "the run should have checkpointed before the kill"
    resumed = _cli(tmp_path, profiles, "--profile", "tiny")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    unbroken = run_grid(load_profiles(profiles)["tiny"], tmp_path / "unbroken", progress=False)
    assert unbroken.finished == ["mnist-bbb-corrected-s0"]
    for table in ("history", "pruning"):
        a = pd.read_csv(tmp_path / "results" / "tiny" / "runs" / "mnist-bbb-corrected-s0" / f"{table}.csv")
        b = pd.read_csv(tmp_path / "unbroken" / "tiny" / "runs" / "mnist-bbb-corrected-s0" / f"{table}.csv")
        pd.testing.assert_frame_equal(a.drop(columns="seconds", errors="ignore"), b.drop(columns="seconds", errors="ignore"))


def test_a_failing_run_keeps_its_notebook_and_the_grid_goes_on(real_data_root, tmp_path):
    failing = {**TINY, "optimizer": "sgd", "lr": 1e6, "hidden": [64, 64], "train_subset": 2000}
    profiles = _profiles_file(
        tmp_path,
        bad={"datasets": ["mnist"], "methods": ["sgd", "dropout0.5"], "seeds": [0], "fractions": [0.0],
             "config": failing},
    )
    process = _cli(tmp_path, profiles, "--profile", "bad")
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 1
    assert "FAILED mnist-sgd-corrected-s0: FloatingPointError" in output and "failed" in output
    notebook = tmp_path / "results" / "bad" / "runs" / ".mnist-sgd-corrected-s0.partial" / "train.ipynb"
    assert "non-finite loss" in notebook.read_text()
    assert "mnist-dropout0.5-corrected-s0" in output


def test_profile_with_a_typo_is_rejected_before_anything_runs(tmp_path):
    path = _profiles_file(tmp_path, typo={"datasets": ["mnist"], "methods": ["sgd"], "seeds": [0],
                                          "fractions": [0.5], "config": {"epoch": 3}})
    with pytest.raises(ValueError, match=r"unknown config keys \['epoch'\]; valid keys"):
        load_profiles(path)
    path = _profiles_file(tmp_path, typo={"dataset": ["mnist"], "methods": ["sgd"], "seeds": [0], "fractions": [0.5]})
    with pytest.raises(ValueError, match="unknown keys \\['dataset'\\]; valid keys"):
        load_profiles(path)
