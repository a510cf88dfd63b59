"""`bayesprune time-training`: a profile's grid runs (its ablation left out) trained and timed, and the
compute chapter's tables of those reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from bayesprune.performance.gridtime import time_profile_training
from bayesprune.pipeline.profiles import load_profiles
from bayesprune.report.compute import training_time_table, training_totals

TINY = {"epochs": 2, "lr": 0.001, "hidden": [16], "train_subset": 500, "test_subset": 200, "device": "cpu"}
ENTRY = {"datasets": ["mnist"], "methods": ["sgd", "bbb"], "seeds": [0, 1], "protocols": ["corrected", "study"],
         "fractions": [0.9], "ablation": ["bbb"], "config": TINY}


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "profiles.yml"
    path.write_text(yaml.safe_dump({"tiny": ENTRY}))
    return load_profiles(path)["tiny"]


def test_times_the_chosen_grid_runs_and_leaves_the_ablation_out(real_data_root, profile):
    report = time_profile_training(profile, seeds=[0], protocols=["study"])
    runs = pd.DataFrame(report["runs"])
    assert sorted(runs["method"]) == ["bbb", "sgd"]
    assert set(runs["protocol"]) == {"study"} and set(runs["seed"]) == {0}
    assert (runs["epochs"] == 2).all() and (runs["seconds"] > 0).all()
    assert runs["test_acc"].between(0.0, 1.0).all()
    assert report["step_launch"] == "operation by operation"
    assert report["total_seconds"] >= runs["seconds"].max()


def test_tables_put_the_same_run_of_the_shown_results_beside(real_data_root, profile):
    report = time_profile_training(profile, seeds=[1], protocols=["corrected"])
    history = pd.DataFrame([{"dataset": "mnist", "method": m, "seed": 1, "protocol": "corrected", "variant": "", "epoch": e,
                             "test_acc": 0.5 + e / 10} for m in ("sgd", "bbb") for e in (1, 2)])
    table = training_time_table([report], [{"profile": "tiny"}], history)
    assert table["same run in these results"].tolist() == [0.7, 0.7]
    other = training_time_table([report], [{"profile": "paper"}], history)
    assert other["same run in these results"].isna().all()
    totals = training_totals([report])
    assert totals.iloc[0]["runs"] == 2 and totals.iloc[0]["epochs"] == 4


def test_cli_refuses_bad_jobs_before_training(tmp_path, profile):
    path = tmp_path / "profiles.yml"
    result = subprocess.run([sys.executable, "-m", "bayesprune.cli", "time-training", "--profile", "tiny", "--jobs", "0"],
                            env={**os.environ, "BAYESPRUNE_PROFILES": str(path)}, capture_output=True, text=True)
    assert result.returncode == 2
    assert "jobs must be an integer >= 1" in result.stderr


def test_cli_writes_the_report(real_data_root, tmp_path, profile):
    out = tmp_path / "timing.json"
    result = subprocess.run([sys.executable, "-m", "bayesprune.cli", "time-training", "--profile", "tiny",
                             "--protocols", "corrected", "--json", str(out)],
                            env={**os.environ, "BAYESPRUNE_PROFILES": str(tmp_path / "profiles.yml")},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "2 runs of profile tiny, 1 at a time" in result.stdout
    assert len(json.loads(out.read_text())["runs"]) == 2


def test_a_custom_protocol_run_of_the_grid_is_timed_too(real_data_root, tmp_path):
    path = tmp_path / "profiles.yml"
    custom = {**ENTRY, "protocols": ["custom"], "seeds": [0], "ablation": [],
              "config": {**TINY, "deviations": ["kl_doubling"]}}
    path.write_text(yaml.safe_dump({"mixed": custom}))
    report = time_profile_training(load_profiles(path)["mixed"])
    assert sorted(run["method"] for run in report["runs"]) == ["bbb", "sgd"]
