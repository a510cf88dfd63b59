"""Compression metrics of a pruned network: counts, ratio, speedup, stored bytes, and sparse inference that
computes what dense inference does."""

import pytest
import torch

from bayesprune.compress.footprint import bitmask_bytes, compression_metrics, csr_bytes
from bayesprune.performance.compression import forward, inference_seconds, to_csr


def _layers():
    first = torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]])  # 3 x 4, 3 nonzero
    second = torch.tensor([[0.0, 4.0, 0.0], [5.0, 0.0, 6.0]])  # 2 x 3, 3 nonzero
    return [first, second], [torch.tensor([0.5, 0.0, 1.0]), torch.tensor([0.0, 1.0])]


def test_counts_ratio_and_speedup_follow_shrinkbench():
    weights, biases = _layers()
    metrics = compression_metrics(weights, biases)
    assert metrics["parameters"] == 12 + 6 + 3 + 2 and metrics["nonzero"] == 3 + 3 + 2 + 1
    assert metrics["compression"] == pytest.approx(23 / 9)
    assert metrics["speedup"] == pytest.approx(18 / 6)  # multiply-adds of the weight matrices only


def test_stored_bytes_of_dense_csr_and_bitmask():
    weights, biases = _layers()
    first = weights[0]
    assert csr_bytes(first, 4) == 3 * (4 + 1) + 4 * 1  # values + 1-byte column indices, 4 row pointers of 1 byte
    assert bitmask_bytes(first, 2) == 2 + 3 * 2  # 12 bits in 2 bytes, 3 float16 values
    metrics = compression_metrics(weights, biases)
    assert metrics["bytes_dense_float32"] == 23 * 4 and metrics["bytes_dense_float16"] == 23 * 2
    assert metrics["bytes_csr_float32"] == csr_bytes(first, 4) + csr_bytes(weights[1], 4) + 5 * 4


def test_a_sparse_network_computes_what_the_dense_one_does():
    torch.manual_seed(0)
    weights = [torch.randn(30, 20) * (torch.rand(30, 20) > 0.9), torch.randn(5, 30) * (torch.rand(5, 30) > 0.9)]
    biases = [torch.randn(30), torch.randn(5)]
    x = torch.randn(7, 20)
    dense = forward(x, weights, biases)
    sparse = forward(x, [to_csr(w) for w in weights], biases)
    assert torch.allclose(dense, sparse, atol=1e-5)
    assert inference_seconds(weights, biases, batch=4, repeats=3, sparse=True) > 0


def test_the_compact_network_computes_what_the_pruned_one_does_with_fewer_units():
    from bayesprune.performance.compression import compact, narrower

    torch.manual_seed(0)
    weights = [torch.randn(8, 6), torch.randn(5, 8), torch.randn(3, 5)]
    biases = [torch.randn(8).abs(), torch.randn(5), torch.randn(3)]
    weights[0][:, 4] = 0  # an input nothing reads
    weights[0][2] = 0  # hidden unit 2 of layer 1 has no inputs: a constant, ReLU of its bias
    weights[1][:, 6] = 0  # unit 6 of layer 1 is read by nobody
    weights[2][:, 1] = 0  # unit 1 of layer 2 likewise
    x = torch.randn(10, 6)
    smaller, small_biases, inputs = compact(weights, biases)
    assert [tuple(w.shape) for w in smaller] == [(6, 5), (4, 6), (3, 4)]
    assert torch.allclose(forward(x[:, inputs], smaller, small_biases), forward(x, weights, biases), atol=1e-5)
    widths = narrower([784, 500, 500, 10], 0.1)
    kept = sum(a * b for a, b in zip(widths, widths[1:])) / (784 * 500 + 500 * 500 + 500 * 10)
    assert widths[0] == 784 and widths[-1] == 10 and abs(kept - 0.1) < 0.005


def test_each_bcgnj_run_as_trained_is_timed_against_its_dense_network_and_csr_with_as_many_weights(tmp_path):
    import pandas as pd

    from bayesprune.cli import main
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.pipeline.run_paths import run_id
    from bayesprune.performance.compression import architecture_latency, unit_pruned_latency, weight_count

    kept = {1: "300-60-20-10", 2: "280-50-30-10"}
    for seed, architecture in kept.items():
        cfg = RunConfig(method="bcgnj", seed=seed, variant="lenet", hidden=(300, 100))
        run = tmp_path / "runs" / run_id(cfg)
        run.mkdir(parents=True)
        keys = {"dataset": "mnist", "method": "bcgnj", "seed": seed, "variant": "lenet"}
        pd.DataFrame([{**keys, "protocol": "corrected", "criterion": "unit_log_alpha", "fraction": 0.0,
                       "architecture": "784-300-100-10"}]).to_csv(run / "pruning.csv", index=False)
        pd.DataFrame([{**keys, "protocol": protocol, "threshold": -3.0, "architecture": architecture if protocol ==
                       "corrected" else "784-300-100-10"} for protocol in ("corrected", "study")]).to_csv(run / "precision.csv", index=False)
        write_manifest({"config": cfg.to_dict(), "run": run_id(cfg)}, run)
    rows = unit_pruned_latency(tmp_path, batches=(1, 4), repeats=2)
    assert [(row["seed"], row["batch"]) for row in rows] == [(1, 1), (1, 4), (2, 1), (2, 4)]  # corrected runs only
    for row in rows:
        sizes = [int(units) for units in kept[row["seed"]].split("-")]
        assert row["network"] == "784-300-100-10" and row["units_architecture"] == kept[row["seed"]]
        assert row["sparsity"] == pytest.approx(1 - weight_count(sizes) / weight_count([784, 300, 100, 10]))
        assert min(row["dense_ms"], row["csr_ms"], row["units_ms"]) > 0
    with pytest.raises(ValueError, match="cannot be 784-400-100-10"):
        architecture_latency([784, 300, 100, 10], [784, 400, 100, 10])
    assert main(["latency", "--runs", str(tmp_path), "--repeats", "2", "--csv", str(tmp_path / "latency.csv")]) == 0
    written = pd.read_csv(tmp_path / "latency.csv")
    assert len(written) == 4 and {"machine", "threads", "units_ms", "csr_ms"} <= set(written)
