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
