"""The grid runner: atomic runs, skip when finished, resume after kill -9, failures kept and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from bayesprune.config import RunConfig
from bayesprune.model.models import build_model
from bayesprune.pipeline.profiles import load_profiles
from bayesprune.pipeline.manifest import training_seconds, write_manifest
from bayesprune.pipeline.results import has_table, load_table, write_table
from bayesprune.pipeline.run_paths import RunPaths
from bayesprune.pipeline.runner import adopt_checkpoint, restore_checkpoint, run_grid
from bayesprune.pipeline.runs import load_trained
from bayesprune.training.checkpoint import load_checkpoint, save_checkpoint
from bayesprune.training.train import CHECKPOINT

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


@pytest.mark.slow
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
    assert list(pruning.columns) == ["dataset", "method", "seed", "protocol", "variant", "criterion", "fraction",
                                     "achieved_sparsity", "accuracy_mean", "accuracy_ensemble", "parameters", "nonzero",
                                     "compression", "speedup", "architecture", "removed_layer1", "removed_layer2",
                                     "bytes_dense_float32", "bytes_csr_float32",
                                     "bytes_bitmask_float32", "bytes_dense_float16", "bytes_csr_float16",
                                     "bytes_bitmask_float16"]
    assert pruning["accuracy_ensemble"].isna().all()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["method"] == "sgd" and manifest["libraries"]["torch"]
    scoring = manifest["prune_seconds_by_part"]  # where the pruning notebook's seconds went
    assert {"loading", "masks", "deterministic passes", "metrics"} <= set(scoring) and min(scoring.values()) >= 0
    networks = manifest["prune_seconds_by_network"]  # and per pruned network, each criterion at each fraction
    assert set(networks) == {f"{c} at {f:g}" for c in ("magnitude", "unit_norm") for f in pruning["fraction"].unique()}
    assert sum(networks.values()) <= sum(scoring.values())
    assert not RunPaths(run_dir.parent, run_dir.name).partial.exists()


@pytest.mark.slow
def test_a_run_that_differs_only_in_its_selection_rule_is_pruned_from_its_sibling_s_training(real_data_root, tmp_path,
                                                                                             monkeypatch):
    config = {**TINY, "method": "sgd-l1", "validation": 100, "patience": 2, "epochs": 3}
    entry = {"datasets": ["mnist"], "methods": ["sgd-l1"], "seeds": [0], "fractions": [0.0, 0.9], "config": config,
             "variants": {"dense": {}, "pruned": {"select": "val_acc_pruned"}}}
    profile = load_profiles(_profiles_file(tmp_path, tiny=entry))["tiny"]
    summary = run_grid(profile, tmp_path / "results", progress=False)
    assert len(summary.finished) == 2 and not summary.failed
    runs = tmp_path / "results" / "tiny" / "runs"
    dense, pruned = (json.loads((runs / f"mnist-sgd-l1-corrected-{v}-s0" / "manifest.json").read_text())
                     for v in ("dense", "pruned"))
    assert "trained_in" not in dense and pruned["trained_in"] == "mnist-sgd-l1-corrected-dense-s0"
    assert pruned["train_seconds"] == 0.0
    costs = {training_seconds(manifest, runs) for manifest in (dense, pruned)}
    assert costs == {dense["train_seconds"]} and dense["train_seconds"] > 0  # the shared training, counted for both
    first, second = (pd.read_csv(runs / f"mnist-sgd-l1-corrected-{v}-s0" / "history.csv") for v in ("dense", "pruned"))
    assert first.drop(columns="variant").equals(second.drop(columns="variant"))
    pruned_cfg = next(cfg for cfg in profile.runs() if cfg.variant == "pruned")
    lost = runs / "mnist-sgd-l1-corrected-pruned-s0" / CHECKPOINT
    lost.unlink()  # restored from the sibling that recorded its training, not retrained
    monkeypatch.setattr("bayesprune.pipeline.runner.attempt_run", lambda *args: pytest.fail("retrained"))
    restore_checkpoint(pruned_cfg, profile, lost.parent, progress=False)
    assert load_checkpoint(lost)["config"] == pruned_cfg.to_dict()


@pytest.mark.slow
def test_a_changed_configuration_is_retrained(real_data_root, tmp_path):
    run_grid(_profile(tmp_path, ["sgd"]), tmp_path / "results", progress=False)
    changed = run_grid(_profile(tmp_path, ["sgd"], {**TINY, "epochs": 3}), tmp_path / "results", progress=False)
    assert changed.finished == ["mnist-sgd-corrected-s0"]


@pytest.mark.slow
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
    notebook = RunPaths(tmp_path / "results" / "bad" / "runs", "mnist-sgd-corrected-s0").partial / "train.ipynb"
    assert "non-finite loss" in notebook.read_text()
    assert "mnist-dropout0.5-corrected-s0" in output


@pytest.mark.slow
def test_parallel_jobs_finish_every_run_once(real_data_root, tmp_path):
    from bayesprune.pipeline.executors import LocalExecutor

    profile = _profile(tmp_path, ["sgd", "dropout0.5"])
    summary = run_grid(profile, tmp_path / "results", progress=False, executor=LocalExecutor(jobs=2))
    assert sorted(summary.finished) == ["mnist-dropout0.5-corrected-s0", "mnist-sgd-corrected-s0"] and summary.ok
    pruning = load_table(tmp_path / "results" / "tiny", "pruning")
    assert pruning.groupby(["method", "criterion"]).size().to_dict() == {  # two fractions, each criterion, once
        ("dropout0.5", "magnitude"): 2, ("dropout0.5", "unit_norm"): 2, ("sgd", "magnitude"): 2, ("sgd", "unit_norm"): 2}


def _pinned_device(_: int) -> tuple[str, str, int]:
    import time

    import torch

    time.sleep(0.5)  # keep this worker busy so the other one takes the next item
    return os.environ.get("CUDA_VISIBLE_DEVICES", ""), os.environ["OMP_NUM_THREADS"], torch.get_num_threads()


def test_parallel_workers_each_get_their_own_gpu_and_thread_share():
    from bayesprune.pipeline.executors import LocalExecutor

    seen = list(LocalExecutor(jobs=2, gpus=["3", "5"]).map(_pinned_device, [0, 1]))
    share = max(1, (os.cpu_count() or 1) // 2)
    assert sorted(device for device, _, _ in seen) == ["3", "5"]
    assert {(threads, torch_threads) for _, threads, torch_threads in seen} == {(str(share), share)}  # what manifests record


def test_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    import builtins

    from bayesprune.pipeline.executors import MissingExtra, make_executor

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(MissingExtra, match=r"pip install -e '\.\[ray\]'"):
        make_executor("ray")


@pytest.mark.slow
def test_recheck_retrains_a_run_and_finds_it_identical(real_data_root, tmp_path):
    from bayesprune.pipeline.recheck import recheck

    profile = _profile(tmp_path, ["sgd"])
    assert run_grid(profile, tmp_path / "results", progress=False).ok
    table, seconds = recheck(profile, tmp_path / "results" / "tiny", "mnist-sgd-corrected-s0", tmp_path / "again")
    assert table["within"].all() and (table["difference"].abs() < 1e-9).all() and seconds > 0
    compared = sorted(zip(table.index.get_level_values("criterion"), table.index.get_level_values("fraction")))
    assert compared == [("magnitude", 0.0), ("magnitude", 0.9), ("unit_norm", 0.0), ("unit_norm", 0.9)]


def _execute_prior(index: int) -> float:
    from bayesprune.pipeline.execute import execute_notebook

    return execute_notebook("prior", Path(tempfile.gettempdir()) / f"bayesprune-test-prior-{os.getpid()}-{index}.ipynb", {})


@pytest.mark.slow
def test_notebooks_executed_side_by_side_get_kernels_of_their_own():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from bayesprune.pipeline.execute import LocalKernelManager

    first, second = LocalKernelManager(kernel_name="python3"), LocalKernelManager(kernel_name="python3")
    assert first.transport == "ipc" and first.ip != second.ip  # no shared socket path, no crossed messages
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:  # as the runner's pool
        assert all(seconds > 0 for seconds in pool.map(_execute_prior, range(3)))


def test_the_progress_bar_weighs_runs_by_their_expected_cost():
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.runner import expected_cost

    def epoch(method: str, **fields) -> float:
        """What ten more epochs add to a run's cost."""
        return expected_cost(RunConfig(method=method, epochs=20, **fields)) - expected_cost(RunConfig(method=method, epochs=10, **fields))

    assert epoch("bbb") == pytest.approx(4 * epoch("sgd"))  # a BBB step costs four SGD steps
    assert epoch("dropout0.5") == pytest.approx(epoch("sgd"))
    assert epoch("sgd", hidden=(1200, 1200)) > 3 * epoch("sgd")
    # at quick's six epochs, scoring orders them as they took: BBB, then Monte Carlo dropout, then SGD
    sgd, dropout, bbb = (expected_cost(RunConfig(method=m, epochs=6)) for m in ("sgd", "dropout0.9", "bbb"))
    assert bbb > dropout > sgd


def test_the_grid_starts_its_longest_runs_first(tmp_path):
    from bayesprune.pipeline.runner import Outcome, expected_cost

    class Recording:
        """An executor that records the order it is given runs in and trains none."""
        jobs = 2

        def __init__(self) -> None:
            self.order: list[RunConfig] = []

        def map(self, task, items, profile, runs_dir, data_dir):
            for cfg in items:
                self.order.append(cfg)
                yield Outcome(run=RunPaths.of(runs_dir, cfg).name, status="finished")

    profile = _profile(tmp_path, ["sgd", "dropout0.75", "dropout0.5", "bbb"])
    recording = Recording()
    run_grid(profile, tmp_path / "results", executor=recording, progress=False)
    # equal costs keep their order
    assert [cfg.method for cfg in recording.order] == ["bbb", "dropout0.75", "dropout0.5", "sgd"]
    costs = [expected_cost(cfg) for cfg in recording.order]
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[1]


@pytest.mark.slow
def test_the_progress_bar_names_the_run_in_progress_and_ends_full(real_data_root, tmp_path, capsys):
    profile = _profile(tmp_path, ["sgd", "bbb"])
    run_grid(profile, tmp_path / "results", data_dir=real_data_root)
    bar = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.strip()]
    assert any("0/2 runs, running mnist-bbb-corrected-s0" in line for line in bar)  # the longest first
    assert "100%" in bar[-1] and "2/2 runs" in bar[-1]
    run_grid(profile, tmp_path / "results", data_dir=real_data_root)
    assert "100%" in capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]


def test_runs_go_side_by_side_by_default_on_a_machine_without_gpus(monkeypatch):
    from bayesprune.pipeline.executors import default_jobs, make_executor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert default_jobs() == 2 and make_executor().jobs == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert default_jobs() == 3
    assert make_executor(jobs=1).jobs == 1


def test_a_run_pruned_from_its_sibling_s_training_keeps_the_epoch_its_own_score_selects(tmp_path):
    dense = RunConfig(method="sgd", hidden=[4], epochs=1, validation=100, patience=1, variant="as-trained")
    pruned = replace(dense, select="val_acc_pruned", variant="pruned90")
    by_accuracy, by_pruned = build_model(dense).state_dict(), build_model(replace(dense, seed=1)).state_dict()
    record = {"epoch": 1, "val_acc": 0.9, "val_nll": 0.3, "val_acc_pruned": 0.8}
    save_checkpoint({"config": dense.to_dict(), "history": [record], "epoch": 1, "model": by_accuracy,
                     "best_models": {"val_acc": by_accuracy, "val_acc_pruned": by_pruned}}, tmp_path / "sibling.pt")
    (tmp_path / "run").mkdir()
    adopt_checkpoint(tmp_path / "sibling.pt", pruned, tmp_path / "run" / CHECKPOINT)
    cfg, model = load_trained(tmp_path / "run")
    assert cfg == pruned
    assert all(torch.equal(model.state_dict()[k], by_pruned[k]) for k in by_pruned)


def test_a_table_a_run_had_nothing_to_record_in_is_skipped_by_every_reader(tmp_path):
    for name, rows in (("with-rows", [{"fraction": 0.9, "accuracy": 0.97}]), ("empty", [])):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        write_table(rows, {"dataset": "mnist", "method": "sgd", "seed": 0, "protocol": "corrected", "variant": ""},
                    run / "posthoc.csv")
        write_manifest({"config": {}}, run)
    assert (tmp_path / "runs" / "empty" / "posthoc.csv").read_text().strip() == ""
    assert has_table(tmp_path, "posthoc") and not has_table(tmp_path, "finetuned")
    assert load_table(tmp_path, "posthoc")["accuracy"].tolist() == [0.97]
    (tmp_path / "runs" / "with-rows" / "manifest.json").unlink()
    assert not has_table(tmp_path, "posthoc")
    with pytest.raises(FileNotFoundError, match="no finished runs with posthoc.csv"):
        load_table(tmp_path, "posthoc")
