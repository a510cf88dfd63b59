"""Weight statistics and the study-layout tables built from tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from bayesprune.model.weights import value_stats
from bayesprune.report.reference import REPORTED
from bayesprune.report.tables import mean_architecture, study_layout, weight_summary


def test_describe_matches_known_moments():
    torch.manual_seed(0)
    uniform = torch.rand(400_000) * 2 - 1
    stats = value_stats(uniform)
    assert stats["std"] == pytest.approx(1 / 3**0.5, rel=1e-2)
    assert stats["kurtosis"] == pytest.approx(-1.2, abs=0.02)
    assert stats["near_zero_share"] == pytest.approx(0.01, abs=0.002)
    assert value_stats(torch.randn(400_000))["kurtosis"] == pytest.approx(0.0, abs=0.05)


def _rows(method, criterion, accuracies_by_seed):
    return [{"dataset": "mnist", "method": method, "seed": seed, "protocol": "corrected", "criterion": criterion,
             "fraction": fraction, "achieved_sparsity": fraction, "accuracy_mean": accuracy, "accuracy_ensemble": None}
            for seed, accuracies in enumerate(accuracies_by_seed) for fraction, accuracy in zip((0.0, 0.5, 0.75, 0.9), accuracies)]


def test_study_layout_puts_mean_std_study_and_difference_side_by_side():
    pruning = pd.DataFrame(
        _rows("sgd", "magnitude", [(0.98, 0.97, 0.95, 0.60), (0.96, 0.95, 0.93, 0.40)])
        + _rows("bbb", "snr", [(0.97, 0.96, 0.90, 0.50)])
        + _rows("bbb", "magnitude", [(0.97, 0.10, 0.10, 0.10)])
    )
    table = study_layout(pruning, "mnist", "corrected")
    assert list(table.index.get_level_values("model").unique()) == ["SGD", "BBB"]
    assert list(table.columns) == ["ours", "study", "ours − study"]
    assert table.loc[("SGD", "90%"), "ours"] == "0.5000 ± 0.1414"
    assert table.loc[("SGD", "90%"), "study"] == f"{REPORTED['mnist']['sgd'][3]:.4f}"
    assert table.loc[("SGD", "90%"), "ours − study"] == f"{0.5 - REPORTED['mnist']['sgd'][3]:+.4f}"
    assert table.loc[("BBB", "50%"), "ours"] == "0.9600"  # SNR rows, one seed: no spread shown


def test_weight_summary_averages_the_all_rows_over_seeds():
    weights = pd.DataFrame([
        {"dataset": "mnist", "method": "sgd", "seed": s, "protocol": "corrected", "parameter": "weight", "layer": layer, "std": std,
         "kurtosis": 1.0, "near_zero_share": 0.1} for s, std in ((0, 0.2), (1, 0.4)) for layer in ("1", "all")])
    summary = weight_summary(weights)
    assert summary["std"].tolist() == [pytest.approx(0.3)]


def test_bench_times_every_model_and_derives_the_ratios(real_data_root):
    from bayesprune.performance.bench import format_report, run_bench

    models = ["sgd", "bbb", "bbb-torch", "bbb-study", "sgd-2x1200", "bbb-2x1200"]
    report = run_bench(models, steps=2, repeats=1, warmup=1, device="cpu")
    assert list(report["models"]) == models
    assert all(row["step_ms"] > 0 and row["epoch_seconds"] == pytest.approx(row["step_ms"] * 0.6)
               for row in report["models"].values())
    assert report["bbb/sgd"] == pytest.approx(report["models"]["bbb"]["step_ms"] / report["models"]["sgd"]["step_ms"])
    assert report["matmul_gflops"] > 0 and 0 < report["sgd_matmul_share_of_peak"]
    times = [op["self_ms_per_step"] for op in report["profile"]["bbb"]]
    assert 5 <= len(times) <= 12 and times == sorted(times, reverse=True) and times[0] > 0
    assert set(report["step_parts"]) == {"sgd", "bbb", "sgd-2x1200", "bbb-2x1200"}
    big_bbb, big_sgd = report["step_parts"]["bbb-2x1200"], report["step_parts"]["sgd-2x1200"]
    assert big_bbb["sampling kernel"] > 0 and big_sgd["sampling kernel"] == 0
    assert big_bbb["matrix products"] > 0 and big_sgd["matrix products"] > 0 and big_bbb["optimizer"] > 0
    assert report["bbb-2x1200/sgd-2x1200"] == pytest.approx(
        report["models"]["bbb-2x1200"]["step_ms"] / report["models"]["sgd-2x1200"]["step_ms"])
    assert report["ratio_ranges"]["bbb/sgd"] == [pytest.approx(report["bbb/sgd"])] * 2  # one repeat: no range
    text = format_report(report)
    assert "extrapolated" in text and "target" not in text
    assert report["noise_ms"]["torch.randn"] > 0
    crossover = report["sparse_crossover"]["784-300-100-10"]
    assert set(crossover) == {"1", "1000"} and all(s != s or 0 < s < 1 for s in crossover.values())
    assert "CSR inference beats dense" in text and "one bbb-2x1200 step by part (ms): matrix products" in text
    with pytest.raises(ValueError, match="unknown bench model.*valid choices: sgd"):
        run_bench(["sgd", "adagrad"], device="cpu")


def test_bench_models_take_turns_within_each_repeat_and_ratios_pair_repeats(monkeypatch):
    from bayesprune.performance import bench

    calls = []
    named = {name: (lambda i, name=name: calls.append(name)) for name in ("sgd", "bbb")}
    seconds = bench.time_in_turns(named, steps=2, repeats=2, warmup=1, device=torch.device("cpu"))
    assert calls == ["sgd", "bbb"] + ["sgd", "sgd", "bbb", "bbb"] * 2  # warm-up, then one turn each per repeat
    assert {name: len(times) for name, times in seconds.items()} == {"sgd": 2, "bbb": 2}
    # a machine that slows down from the second repeat's bbb turn on: two of three repeats pair at 3x,
    # while the medians (1 and 6 s) would say 6x
    drifting = {"sgd": [1.0, 1.0, 2.0], "bbb": [3.0, 6.0, 6.0]}
    monkeypatch.setattr(bench, "time_in_turns", lambda named_steps, *args: {k: drifting[k] for k in named_steps})
    monkeypatch.setattr(bench, "profile_step", lambda step, device: [])
    monkeypatch.setattr(bench, "matmul_gflops", lambda device: 1.0)
    monkeypatch.setattr(bench, "noise_ms", lambda device: {})
    monkeypatch.setattr(bench, "sparse_crossover", lambda repeats: {})
    monkeypatch.setattr(bench, "load_split", lambda *args: (torch.zeros(200, 784), torch.zeros(200, dtype=torch.long)))
    monkeypatch.setattr(bench, "MODELS", {k: bench.BenchModel(k, lambda device, x, y: (lambda i: None)) for k in drifting})
    report = bench.run_bench(["sgd", "bbb"], repeats=3, device="cpu")
    assert report["bbb/sgd"] == pytest.approx(3.0) and report["ratio_ranges"]["bbb/sgd"] == [3.0, 6.0]
    assert report["models"]["bbb"]["step_ms"] == pytest.approx(6000.0)
    assert "bbb/sgd: 3.00x (repeats 3.00-6.00x)" in bench.format_report(report)
    # both models' repeats disagree by far more than the tolerance: the report says so
    assert [flag.split("'")[0] for flag in report["flags"] if "repeats disagree" in flag] == ["sgd", "bbb"]
    assert "WARNING: sgd's repeats disagree: 1000.00 to 2000.00 ms a step (100% apart" in bench.format_report(report)


def test_the_bench_flags_a_busy_machine_and_stays_quiet_on_steady_repeats():
    from bayesprune.performance.bench import bench_flags

    assert bench_flags({"sgd": [2.00e-3, 2.05e-3, 2.09e-3]}, load=0.3, cores=2) == []
    assert bench_flags({"sgd": [2.0e-3, 2.0e-3]}, load=0.3, cores=2, peaks=(90.0, 95.0)) == []
    assert "own speed moved" in bench_flags({"sgd": [2.0e-3, 2.0e-3]}, load=0.3, cores=2, peaks=(90.0, 70.0))[0]
    assert bench_flags({"sgd": [2.0e-3, 2.0e-3]}, load=3.1, cores=2)[0].startswith(
        "the machine was busy when the bench began (load 3.1 on 2 cores)")


def test_run_cost_table_takes_the_median_epoch_and_each_run_s_own_epoch_count():
    from bayesprune.config import RunConfig
    from bayesprune.report.compute import run_cost_table

    study = RunConfig(dataset="fashion-mnist", method="sgd", protocol="study", epochs=3)  # trains 6 epochs
    corrected = [RunConfig(dataset="fashion-mnist", method="sgd", epochs=3, seed=seed) for seed in (0, 1)]
    manifests = [{"device_name": "cpu", "config": cfg.to_dict(), "notebook_seconds": {"train": 1.0, "prune": 60.0}}
                 for cfg in (study, *corrected)]
    epochs = {0: [2.0, 2.0, 2.0, 900.0, 2.0, 2.0], 1: [4.0, 4.0, 4.0]}  # a run paused for one epoch
    history = pd.DataFrame(
        [{"dataset": "fashion-mnist", "method": "sgd", "seed": 0, "protocol": "study", "variant": "", "seconds": s}
         for s in epochs[0]]
        + [{"dataset": "fashion-mnist", "method": "sgd", "seed": seed, "protocol": "corrected", "variant": "", "seconds": s}
           for seed, per in ((0, [1.0, 1.0, 1.0]), (1, epochs[1])) for s in per])
    table = run_cost_table(manifests, history)
    assert table.loc[("cpu", "fashion-mnist", "sgd", "study", ""), "training minutes per run"] == pytest.approx(12 / 60)
    row = table.loc[("cpu", "fashion-mnist", "sgd", "corrected", "")]
    assert row["runs"] == 2 and row["seconds per epoch"] == pytest.approx(2.5)
    assert row["pruning sweep minutes"] == pytest.approx(1.0)


def test_scoring_parts_add_up_to_the_sweep_and_leave_fine_tuning_apart():
    from bayesprune.config import RunConfig
    from bayesprune.report.compute import scoring_parts_table

    parts = {"loading": 2.0, "masks": 1.0, "deterministic passes": 3.0, "Monte Carlo passes": 20.0, "metrics": 1.0,
             "tables": 0.5, "fine-tuning": 100.0, "post-hoc calibration and Laplace": 6.0}
    manifests = [{"config": RunConfig(method="bbb", seed=seed).to_dict(), "train_seconds": 55.0,
                  "prune_seconds_by_part": parts} for seed in (0, 1)]
    manifests.append({"config": RunConfig(method="sgd").to_dict(), "train_seconds": 9.0})  # scored before parts
    table = scoring_parts_table(manifests)
    row = table.loc[("mnist", "bbb", "")]
    assert list(table.index) == [("mnist", "bbb", "")]
    assert row["scoring, s"] == pytest.approx(33.5) and row["the rest"] == pytest.approx(4.5)
    assert row["post-hoc fits"] == pytest.approx(6.0)
    assert row["fine-tuning, s"] == pytest.approx(100.0)
    assert row["scoring / training"] == pytest.approx(0.61)  # 33.5 / 55, to two places


def test_scoring_by_network_reads_each_criterion_at_each_fraction_as_a_mean_over_runs():
    from bayesprune.config import RunConfig
    from bayesprune.report.compute import scoring_by_network_table

    manifests = [{"config": RunConfig(method="bbb", seed=seed).to_dict(),
                  "prune_seconds_by_network": {"snr at 0": 4.0 + seed, "snr at 0.9": 2.0, "magnitude at 0.9": 1.0}}
                 for seed in (0, 1)]
    manifests.append({"config": RunConfig(method="sgd").to_dict()})  # scored before it was recorded
    table = scoring_by_network_table(manifests)
    assert list(table.columns) == ["0 %", "90 %"] and list(table.index) == [("bbb", "magnitude"), ("bbb", "snr")]
    assert table.loc[("bbb", "snr"), "0 %"] == pytest.approx(4.5) and table.loc[("bbb", "snr"), "90 %"] == 2.0
    assert scoring_by_network_table(manifests[2:]).empty


def test_bbb_predictions_keep_each_protocol_s_networks_apart():
    from bayesprune.report.tables import bbb_predictions

    rows = [{"dataset": "fashion-mnist", "method": "bbb", "seed": s, "protocol": p, "criterion": "magnitude",
             "fraction": 0.0, "accuracy_mean": a, "accuracy_ensemble": a - 0.01}
            for p, a in (("corrected", 0.8941), ("study", 0.7475)) for s in (0, 1)]
    table = bbb_predictions(pd.DataFrame(rows))
    assert table.loc[("fashion-mnist", "corrected", "magnitude", 0.0), "posterior mean"] == pytest.approx(0.8941)
    assert table.loc[("fashion-mnist", "study", "magnitude", 0.0), "ensemble"] == pytest.approx(0.7375)
    assert len(table) == 2


def test_epoch_times_are_medians_that_a_stalled_epoch_cannot_carry():
    from bayesprune.report.compute import epoch_times

    seconds = [4.4, 4.5, 4.3, 2262.0, 4.4]
    history = pd.DataFrame([{"dataset": "mnist", "method": "dropout0.9", "seed": 0, "protocol": "corrected",
                             "variant": "", "epoch": e + 1, "seconds": s} for e, s in enumerate(seconds)])
    row = epoch_times(history).loc[("mnist", "corrected", "dropout0.9")]
    assert row["median seconds per epoch"] == pytest.approx(4.4)
    assert row["slowest epoch, seconds"] == 2262.0 and row["stalled epochs"] == 1 and row["epochs"] == 5


def test_augmentation_check_says_which_code_path_matches_the_study_s_table():
    from bayesprune.report.tables import augmentation_check

    rows = [{"dataset": "fashion-mnist", "method": m, "seed": 0, "protocol": p, "criterion": c, "fraction": 0.0,
             "accuracy_mean": a, "accuracy_ensemble": a}
            for m, c in (("sgd", "magnitude"), ("bbb", "snr"))
            for p, a in (("study", 0.75), ("study without augmentation", 0.895), ("corrected", 0.896))]
    table, text = augmentation_check(pd.DataFrame(rows))
    assert list(table.index) == ["SGD", "BBB"] and table.loc["BBB", "study's table"] == pytest.approx(0.8925)
    assert "cannot come from its public code as written" in text
    same = [dict(r, accuracy_mean=0.75) for r in rows]
    assert "does not come closer" in augmentation_check(pd.DataFrame(same))[1]


def test_units_left_reads_each_models_architecture_at_its_own_criterion():
    from bayesprune.report.tables import units_left

    keys = {"dataset": "mnist", "protocol": "corrected", "variant": ""}
    rows = [{**keys, "method": "sgd", "seed": s, "criterion": "magnitude", "fraction": 0.9, "architecture": a}
            for s, a in ((1, "700-300-100-10"), (2, "600-290-100-10"))]
    rows += [{**keys, "method": "bbb", "seed": 1, "criterion": c, "fraction": 0.9, "architecture": a}
             for c, a in (("snr", "784-120-40-10"), ("magnitude", "500-300-100-10"))]
    table = units_left(pd.DataFrame(rows), fractions=(0.9,))
    assert table.loc[("mnist", "sgd"), "90 % pruned"] == "650-295-100-10"  # mean over seeds
    assert table.loc[("mnist", "bbb"), "90 % pruned"] == "784-120-40-10"  # BBB by its own criterion, SNR
    assert units_left(pd.DataFrame(rows).drop(columns="architecture")).empty


def test_active_units_are_read_at_the_kept_epoch():
    from bayesprune.report.tables import active_units

    keys = {"dataset": "mnist", "method": "bbb", "protocol": "corrected", "variant": ""}
    history = pd.DataFrame([{**keys, "seed": 1, "epoch": e, "val_acc": v, "active_units_1": u, "active_units_2": 50}
                            for e, v, u in ((1, 0.90, 400), (2, 0.97, 300), (3, 0.95, 200))])
    assert active_units(history).loc["mnist", "hidden layer 1"] == 300
    assert active_units(history.drop(columns=["active_units_1", "active_units_2"])).empty


def test_architectures_average_layer_by_layer_in_whole_units():
    assert mean_architecture(pd.Series(["784-400-300-10", "784-425-277-10"])) == "784-412-288-10"


def test_step_parts_sort_operations_by_kind_and_say_what_the_kernel_costs():
    from bayesprune.performance.bench import step_part, step_parts
    from bayesprune.report.compute import kernel_floor_reading, step_parts_table

    assert [step_part(op) for op in ("aten::baddbmm", "KernelSampleWithCostBackward", "aten::_fused_adam_",
                                     "Optimizer.step#Adam.step", "aten::relu")] == [
        "matrix products", "sampling kernel", "optimizer", "optimizer", "everything else"]
    ops = [{"op": "aten::mm", "self_ms_per_step": 3.0}, {"op": "aten::bmm", "self_ms_per_step": 5.0},
           {"op": "KernelSampleWithCost", "self_ms_per_step": 2.0}, {"op": "KernelSampleWithCostBackward",
                                                                  "self_ms_per_step": 1.0},
           {"op": "aten::_fused_adam_", "self_ms_per_step": 2.0}, {"op": "aten::relu", "self_ms_per_step": 2.5}]
    bbb = step_parts(ops)
    assert bbb == {"matrix products": 8.0, "sampling kernel": 3.0, "optimizer": 2.0, "everything else": 2.5}
    sgd = {"everything else": 1.0, "matrix products": 4.0, "optimizer": 1.0, "sampling kernel": 0.0}  # as JSON keeps it
    models = {"sgd-2x1200": {"step_ms": 6.0}, "bbb-2x1200": {"step_ms": 15.0}}
    reports = [{"machine": "cpu", "models": models, "step_parts": {"sgd-2x1200": sgd, "bbb-2x1200": bbb}},
               {"machine": "old", "models": models}]
    table = step_parts_table(reports)
    assert table.loc[("cpu", "784-1200-1200-10", "matrix products"), "BBB / SGD"] == 2.0
    assert table.index.get_level_values("network").unique().tolist() == ["784-1200-1200-10"]  # no study-size pair
    assert table.index.get_level_values("part").tolist() == [  # by BBB's time, not as the JSON sorts its keys
        "matrix products", "sampling kernel", "optimizer", "everything else"]
    reading = kernel_floor_reading(reports)
    assert reading == ("- Blundell's wider network on cpu: BBB's step takes 2.5x SGD's, its matrix products 2.0x; the sampling "
                       "kernel is 19% of the step, which without it would take 2.0x SGD's.")  # 2.5 x (1 - 3 / 15.5)
    assert "make bench" in kernel_floor_reading([{"machine": "old"}])


def test_the_profile_list_reads_each_profile_s_state_from_its_folder(tmp_path):
    from bayesprune.report.provenance import profile_status

    profiles = tmp_path / "profiles.yml"
    profiles.write_text("""
tiny:
  description: "A tiny grid: two runs. More words."
  datasets: [mnist]
  methods: [sgd, bbb]
  seeds: [0]
  fractions: [0.0, 0.9]
other:
  reference: true
  description: Another.
  datasets: [mnist]
  methods: [sgd]
  seeds: [0, 1]
  fractions: [0.0, 0.9]
""")
    (tmp_path / "results" / "tiny" / "runs" / "mnist-sgd-corrected-s0").mkdir(parents=True)
    (tmp_path / "results" / "tiny" / "runs" / "mnist-sgd-corrected-s0" / "manifest.json").write_text("{}")
    table = profile_status(tmp_path / "results", profiles)
    assert table.loc["tiny", "what it is for"] == "A tiny grid."
    assert (table.loc["tiny", "runs"], table.loc["tiny", "finished here"], table.loc["tiny", "state"]) == (2, 1, "partly run")
    assert (table.loc["other", "state"], table.loc["other", "reference"]) == ("not yet run", "yes")


def test_a_comparison_panel_always_holds_bbb_and_its_prior_matched_map_estimate():
    from bayesprune.report.tables import compared_methods

    methods = ["sgd", "dropout0.5", "dropout0.75", "dropout0.9", "sgd-l2", "dropout0.5-l2", "sgd-l1", "dropout0.5-l1",
               "sgd-mixture", "bbb"]
    shown = compared_methods(methods)
    assert len(shown) == 6 and "bbb" in shown and "sgd-mixture" in shown
    assert shown == ["sgd", "dropout0.5", "sgd-l2", "sgd-l1", "sgd-mixture", "bbb"]  # the strongest, in the study's order
    assert compared_methods(["bbb", "sgd"]) == ["sgd", "bbb"]


def test_runs_in_a_row_give_one_row_each_and_their_spread_in_words():
    from bayesprune.report.compute import runs_in_a_row_reading, runs_in_a_row_table

    def report(name: str, sgd: float, bbb: float) -> dict:
        return {"name": name, "models": {"sgd": {"step_ms": sgd}, "bbb": {"step_ms": bbb}}, "bbb/sgd": bbb / sgd,
                "matmul_gflops_before": 100.0, "matmul_gflops": 90.0, "flags": ["moved"]}

    table = runs_in_a_row_table([report("run-1", 3.0, 9.0), report("run-2", 4.5, 9.9), {"name": "gpu", "models": {}}])
    assert list(table.index) == ["run-1", "run-2"] and table.loc["run-2", "flags"] == 1
    assert runs_in_a_row_reading(table) == ("Over 2 runs in a row, SGD's step took 3.00 to 4.50 ms (50% apart), so "
                                            "BBB / SGD read 2.20x to 3.00x (BBB's step in the table).")
    assert runs_in_a_row_reading(table.iloc[:0]).startswith("No bench")
