"""What a pruned network costs to run: the measured CPU inference time of the dense network, of the sparse (CSR)
one, and of the smaller dense network that removing whole units leaves; the sparsity at which sparse becomes faster
(its counts and stored sizes: compress.footprint)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bayesprune.model.activation import forward
from bayesprune.pipeline.results import dense_architectures, load_table


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


def weight_count(sizes: Sequence[int]) -> int:
    """The weights of an MLP of these layer sizes (biases not counted)."""
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def narrower(sizes: Sequence[int], share: float) -> list[int]:
    """Layer sizes whose hidden widths are scaled by one factor so that the network keeps about `share` of the
    weights (inputs and outputs unchanged): the dense network unit removal would leave at that share."""
    def count(factor: float) -> float:
        return weight_count([sizes[0], *[max(1, round(h * factor)) for h in sizes[1:-1]], sizes[-1]])
    total, low, high = count(1.0), 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if count(middle) < share * total else (low, middle)
    return [sizes[0], *[max(1, round(h * high)) for h in sizes[1:-1]], sizes[-1]]


def _weights(sizes: Sequence[int], generator: torch.Generator) -> list[Tensor]:
    """Random weight matrices of an MLP of these layer sizes."""
    return [torch.randn(n_out, n_in, generator=generator) for n_in, n_out in zip(sizes, sizes[1:])]


def _compared(dense: Sequence[Tensor], dense_ms: float, sparsity: float, widths: Sequence[int], batch: int,
              repeats: int, generator: torch.Generator) -> dict[str, float | str]:
    """One batch size and sparsity: the dense network's time, the CSR network with that share of its weights
    removed at random, and the smaller dense network of these layer sizes (milliseconds)."""
    masked = [w * (torch.rand(w.shape, generator=generator) >= sparsity) for w in dense]
    units = _weights(widths, generator)
    return {"batch": batch, "sparsity": sparsity, "dense_ms": dense_ms,
            "csr_ms": _milliseconds(masked, batch, repeats, sparse=True), "units_ms": _milliseconds(units, batch, repeats),
            "units_architecture": "-".join(map(str, widths))}


def _milliseconds(weights: Sequence[Tensor], batch: int, repeats: int, sparse: bool = False) -> float:
    """`inference_seconds` of these weight matrices with zero biases, in milliseconds."""
    return 1e3 * inference_seconds(weights, [torch.zeros(w.shape[0]) for w in weights], batch, repeats, sparse)


def latency_rows(sizes: Sequence[int], batches: Sequence[int] = (1, 100), sparsities: Sequence[float] = SPARSITIES,
                 repeats: int = 20, seed: int = 0) -> list[dict[str, float | str]]:
    """Median CPU milliseconds of one forward pass of an MLP of these layer sizes, per batch size: dense, with CSR
    weight matrices at each sparsity (random weights, random masks), and as the smaller dense network with the same
    share of weights that removing whole hidden units leaves (`narrower`)."""
    generator = torch.Generator().manual_seed(seed)
    dense = _weights(sizes, generator)
    rows = []
    for batch in batches:
        dense_ms = _milliseconds(dense, batch, repeats)
        rows += [_compared(dense, dense_ms, sparsity, narrower(sizes, 1.0 - sparsity), batch, repeats, generator)
                 for sparsity in sparsities]
    return rows


def architecture_latency(sizes: Sequence[int], kept: Sequence[int], batches: Sequence[int] = (1, 100),
                         repeats: int = 50, seed: int = 0) -> list[dict[str, float | str]]:
    """Median CPU milliseconds of one forward pass per batch size of a dense MLP (`sizes`), of the smaller dense
    network that unit pruning left (`kept`, inputs first), and of the dense one in CSR holding as many weights as
    the smaller network, scattered at random: what removing units buys against removing single weights."""
    if len(kept) != len(sizes) or any(k > s or k < 1 for k, s in zip(kept, sizes)):
        raise ValueError(f"a network pruned from {'-'.join(map(str, sizes))} cannot be {'-'.join(map(str, kept))}")
    generator = torch.Generator().manual_seed(seed)
    dense = _weights(sizes, generator)
    sparsity = 1.0 - weight_count(kept) / weight_count(sizes)
    rows = []
    for batch in batches:
        dense_ms = _milliseconds(dense, batch, repeats)
        rows.append(_compared(dense, dense_ms, sparsity, kept, batch, repeats, generator))
    return rows


def crossover_sparsity(sizes: Sequence[int], batch: int, sparsities: Sequence[float] = SPARSITIES[1:],
                       repeats: int = 20, seed: int = 0) -> float:
    """The lowest sparsity (of a grid) at which the CSR network of these layer sizes runs faster than the dense
    one at this batch size; nan if it never does."""
    rows = latency_rows(sizes, (batch,), sparsities, repeats, seed)
    return next((row["sparsity"] for row in rows if row["csr_ms"] < row["dense_ms"]), float("nan"))


def unit_pruned_latency(results_dir: Path, batches: Sequence[int] = (1, 100), repeats: int = 50) -> list[dict[str, Any]]:
    """Every BC-GNJ run of a profile (corrected protocol), its network as trained (units above the threshold
    removed) timed per batch size against its dense network and against CSR holding as many weights: a row per run,
    threshold and batch."""
    pruning, precision = load_table(results_dir, "pruning"), load_table(results_dir, "precision")
    dense = dense_architectures(pruning[pruning["method"] == "bcgnj"])
    runs = precision[(precision["method"] == "bcgnj") & (precision["protocol"] == "corrected")]
    if runs.empty:
        raise FileNotFoundError(f"no BC-GNJ run with a precision table under {results_dir}")
    rows = []
    for run in runs.itertuples():
        sizes, kept = ([int(units) for units in name.split("-")] for name in (dense[run.variant], run.architecture))
        rows += [{"dataset": run.dataset, "variant": run.variant, "seed": run.seed, "threshold": run.threshold,
                  "network": dense[run.variant], **row} for row in architecture_latency(sizes, kept, batches, repeats)]
    return rows
