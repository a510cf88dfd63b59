"""What a pruned network costs to run: the measured CPU inference time of the dense network, of the sparse (CSR)
one, and of the smaller dense network that removing whole units leaves; the sparsity at which sparse becomes faster
(its counts and stored sizes: compress.footprint)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from bayesprune.model.activation import forward


def to_csr(weight: Tensor) -> Tensor:
    """The matrix in compressed sparse rows, without torch's notice that CSR support is in beta."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return weight.to_sparse_csr()


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


SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)


def compact(weights: Sequence[Tensor], biases: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """The smaller dense network a pruned one computes, and the input columns it still reads: a hidden unit with
    no outgoing weight is dropped, one with no incoming weight is a constant (ReLU of its bias) folded into the next
    layer's bias and dropped, and input columns no weight reads go; the outputs stay. It computes what the pruned
    network computes on those inputs."""
    weights, biases = [w.clone() for w in weights], [b.clone() for b in biases]
    changed = True
    while changed:  # a unit removed in one layer can leave a unit of the next without inputs or outputs
        changed = False
        for k in range(len(weights) - 1):
            fed, read = (weights[k] != 0).any(dim=1), (weights[k + 1] != 0).any(dim=0)
            constant = ~fed & read
            biases[k + 1] = biases[k + 1] + weights[k + 1][:, constant] @ torch.relu(biases[k][constant])
            alive = fed & read
            if not alive.all():
                weights[k], biases[k] = weights[k][alive], biases[k][alive]
                weights[k + 1] = weights[k + 1][:, alive]
                changed = True
    inputs = (weights[0] != 0).any(dim=0)
    weights[0] = weights[0][:, inputs]
    return weights, biases, inputs


def narrower(sizes: Sequence[int], share: float) -> list[int]:
    """Layer sizes whose hidden widths are scaled by one factor so that the network keeps about `share` of the
    weights (inputs and outputs unchanged): the dense network unit removal would leave at that share."""
    def count(factor: float) -> float:
        widths = [sizes[0], *[max(1, round(h * factor)) for h in sizes[1:-1]], sizes[-1]]
        return sum(a * b for a, b in zip(widths, widths[1:]))
    total, low, high = count(1.0), 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if count(middle) < share * total else (low, middle)
    return [sizes[0], *[max(1, round(h * high)) for h in sizes[1:-1]], sizes[-1]]


def latency_rows(sizes: Sequence[int], batches: Sequence[int] = (1, 100), sparsities: Sequence[float] = SPARSITIES,
                 repeats: int = 20, seed: int = 0) -> list[dict[str, float]]:
    """Median CPU milliseconds of one forward pass of an MLP of these layer sizes, per batch size: dense, with CSR
    weight matrices at each sparsity (random weights, random masks), and as the smaller dense network with the same
    share of weights that removing whole hidden units leaves (`narrower`)."""
    generator = torch.Generator().manual_seed(seed)
    dense = [torch.randn(n_out, n_in, generator=generator) for n_in, n_out in zip(sizes, sizes[1:])]
    biases = [torch.zeros(n_out) for n_out in sizes[1:]]
    masked = {s: [w * (torch.rand(w.shape, generator=generator) >= s) for w in dense] for s in sparsities}
    smaller = {s: narrower(sizes, 1.0 - s) for s in sparsities}
    rows = []
    for batch in batches:
        dense_ms = 1e3 * inference_seconds(dense, biases, batch, repeats)
        for sparsity, weights in masked.items():
            widths = smaller[sparsity]
            units = [torch.randn(b, a, generator=generator) for a, b in zip(widths, widths[1:])]
            rows.append({"batch": batch, "sparsity": sparsity, "dense_ms": dense_ms,
                         "csr_ms": 1e3 * inference_seconds(weights, biases, batch, repeats, sparse=True),
                         "units_ms": 1e3 * inference_seconds(units, [torch.zeros(b) for b in widths[1:]], batch, repeats),
                         "units_architecture": "-".join(map(str, widths))})
    return rows


def crossover_sparsity(sizes: Sequence[int], batch: int, sparsities: Sequence[float] = SPARSITIES[1:],
                       repeats: int = 20, seed: int = 0) -> float:
    """The lowest sparsity (of a grid) at which the CSR network of these layer sizes runs faster than the dense
    one at this batch size; nan if it never does."""
    rows = latency_rows(sizes, (batch,), sparsities, repeats, seed)
    return next((row["sparsity"] for row in rows if row["csr_ms"] < row["dense_ms"]), float("nan"))
