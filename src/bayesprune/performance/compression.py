"""What a pruned network costs to store and run, as practitioners measure it (ShrinkBench's conventions for
the first three): nonzero parameters, compression ratio, theoretical speedup, stored size dense and
sparse, and the measured CPU inference time of the dense and the sparse network."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from bayesprune.model.activation import relu_between

BYTES = {"float32": 4, "float16": 2}


def _index_bytes(limit: int) -> int:
    """Bytes of the smallest unsigned integer that holds indices below limit."""
    return 1 if limit <= 2**8 else 2 if limit <= 2**16 else 4


def csr_bytes(weight: Tensor, value_bytes: int) -> int:
    """A matrix stored as compressed sparse rows: the nonzero values, their column indices, one pointer per row."""
    rows, cols = weight.shape
    nonzero = int(torch.count_nonzero(weight))
    return nonzero * (value_bytes + _index_bytes(cols)) + (rows + 1) * _index_bytes(nonzero + 1)


def bitmask_bytes(weight: Tensor, value_bytes: int) -> int:
    """A matrix stored as a bitmask of its nonzero positions and the nonzero values."""
    return math.ceil(weight.numel() / 8) + int(torch.count_nonzero(weight)) * value_bytes


def compression_metrics(weights: Sequence[Tensor], biases: Sequence[Tensor]) -> dict[str, float]:
    """The costs of one network given its layers' weight matrices (out x in) and biases: nonzero parameters,
    compression ratio (all parameters / nonzero), theoretical speedup (dense / nonzero multiply-adds of the
    weight matrices), and stored bytes dense and sparse (weights sparse, biases dense) in float32 and float16."""
    total = sum(w.numel() for w in weights) + sum(b.numel() for b in biases)
    nonzero = sum(int(torch.count_nonzero(p)) for p in [*weights, *biases])
    dense_macs = sum(w.numel() for w in weights)
    sparse_macs = sum(int(torch.count_nonzero(w)) for w in weights)
    metrics: dict[str, float] = {
        "parameters": total, "nonzero": nonzero, "compression": total / max(nonzero, 1),
        "speedup": dense_macs / max(sparse_macs, 1),
    }
    bias_count = sum(b.numel() for b in biases)
    for dtype, size in BYTES.items():
        metrics[f"bytes_dense_{dtype}"] = total * size
        metrics[f"bytes_csr_{dtype}"] = sum(csr_bytes(w, size) for w in weights) + bias_count * size
        metrics[f"bytes_bitmask_{dtype}"] = sum(bitmask_bytes(w, size) for w in weights) + bias_count * size
    return metrics


def to_csr(weight: Tensor) -> Tensor:
    """The matrix in compressed sparse rows, without torch's notice that CSR support is in beta."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return weight.to_sparse_csr()


def forward(x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> Tensor:
    """The MLP's forward pass, ReLU between layers; sparse CSR weights multiply through torch.sparse."""
    for (weight, bias), activation in relu_between(list(zip(weights, biases))):
        product = torch.sparse.mm(weight, x.T).T if weight.layout == torch.sparse_csr else x @ weight.T
        x = activation(product + bias)
    return x


def inference_seconds(weights: Sequence[Tensor], biases: Sequence[Tensor], batch: int, repeats: int = 20,
                      sparse: bool = False) -> float:
    """Median wall seconds of one forward pass of a batch on the CPU, dense or with CSR weight matrices."""
    layers = [to_csr(w) if sparse else w for w in weights]
    x = torch.randn(batch, weights[0].shape[1])
    with torch.inference_mode():
        forward(x, layers, biases)  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            forward(x, layers, biases)
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def crossover_sparsity(sizes: Sequence[int], batch: int, sparsities: Sequence[float] = (0.5, 0.7, 0.8, 0.9, 0.95,
                       0.98, 0.99, 0.995), repeats: int = 20, seed: int = 0) -> float:
    """The lowest sparsity (of a grid) at which the CSR network of these layer sizes runs faster than the dense
    one at this batch size; nan if it never does."""
    generator = torch.Generator().manual_seed(seed)
    dense = [torch.randn(n_out, n_in, generator=generator) for n_in, n_out in zip(sizes, sizes[1:])]
    biases = [torch.zeros(n_out) for n_out in sizes[1:]]
    dense_time = inference_seconds(dense, biases, batch, repeats)
    for sparsity in sparsities:
        masked = [w * (torch.rand(w.shape, generator=generator) >= sparsity) for w in dense]
        if inference_seconds(masked, biases, batch, repeats, sparse=True) < dense_time:
            return sparsity
    return float("nan")
