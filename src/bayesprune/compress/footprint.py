"""What a pruned network costs to store, as practitioners count it (ShrinkBench's conventions for the first
three): nonzero parameters, compression ratio, theoretical speedup, and stored bytes dense and sparse."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from bayesprune.model.bayes import BayesianMLP
from bayesprune.model.group_nj import GroupNJMLP
from bayesprune.model.sparse_vd import SparseVDMLP
from bayesprune.model.weights import weight_matrices

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


def units_left(weights: Sequence[Tensor]) -> list[int]:
    """Units each layer keeps once pruning has cut them off: inputs with a nonzero outgoing weight, hidden units
    with a nonzero incoming and a nonzero outgoing weight, every output (a cut-off unit's constant output folds
    into the next layer's bias)."""
    feeds = [bool_any(w, dim=0) for w in weights]  # per layer's input unit: any nonzero outgoing weight
    fed = [bool_any(w, dim=1) for w in weights]  # per layer's output unit: any nonzero incoming weight
    hidden = [int((fed[k] & feeds[k + 1]).sum()) for k in range(len(weights) - 1)]
    return [int(feeds[0].sum()), *hidden, weights[-1].shape[0]]


def bool_any(weight: Tensor, dim: int) -> Tensor:
    """Whether any entry along dim is nonzero."""
    return (weight != 0).any(dim=dim)


def compression_metrics(weights: Sequence[Tensor], biases: Sequence[Tensor]) -> dict[str, float | str]:
    """The costs of one network given its layers' weight matrices (out x in) and biases: nonzero parameters,
    compression ratio (all parameters / nonzero), theoretical speedup (dense / nonzero multiply-adds of the
    weight matrices), stored bytes dense and sparse (weights sparse, biases dense) in float32 and float16, and the
    architecture left (`units_left`, e.g. 784-300-100-10 dense) and each weight matrix's share removed."""
    total = sum(w.numel() for w in weights) + sum(b.numel() for b in biases)
    nonzero = sum(int(torch.count_nonzero(p)) for p in [*weights, *biases])
    dense_macs = sum(w.numel() for w in weights)
    sparse_macs = sum(int(torch.count_nonzero(w)) for w in weights)
    metrics: dict[str, float] = {
        "parameters": total, "nonzero": nonzero, "compression": total / max(nonzero, 1),
        "speedup": dense_macs / max(sparse_macs, 1),
        "architecture": "-".join(str(units) for units in units_left(weights)),
        **{f"removed_layer{k}": 1 - int(torch.count_nonzero(w)) / w.numel() for k, w in enumerate(weights, start=1)},
    }
    bias_count = sum(b.numel() for b in biases)
    for dtype, size in BYTES.items():
        metrics[f"bytes_dense_{dtype}"] = total * size
        metrics[f"bytes_csr_{dtype}"] = sum(csr_bytes(w, size) for w in weights) + bias_count * size
        metrics[f"bytes_bitmask_{dtype}"] = sum(bitmask_bytes(w, size) for w in weights) + bias_count * size
    return metrics


def biases(model: nn.Module) -> list[Tensor]:
    """Each layer's bias as the evaluated network adds it (BBB: the posterior mean), detached, in order."""
    if isinstance(model, BayesianMLP):
        return [layer.bias_mu.detach() for layer in model.layers]
    if isinstance(model, SparseVDMLP):
        return [layer.bias.detach() for layer in model.layers]
    if isinstance(model, GroupNJMLP):
        return [(layer.bias_mu * layer.out_mask).detach() for layer in model.layers]
    return [m.bias.detach() for m in model.modules() if isinstance(m, nn.Linear)]


def footprint(model: nn.Module) -> dict[str, float | str]:
    """`compression_metrics` of a model as it is evaluated (pruned weights, and sparse VD's dropped ones, as zeros)."""
    return compression_metrics(weight_matrices(model), biases(model))
