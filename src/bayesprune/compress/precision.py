"""Bit precision from the posterior (Louizos, Ullrich and Welling 2017, section 5): a layer's weights are stored
with as many mantissa bits as the posterior variance of its surviving weights allows.

A weight whose posterior variance is v cannot be told apart from values within about 2v of its mean, so it needs
the mantissa bits t (at most 23, float32's) whose unit round-off 2^-t still exceeds 2v; a layer takes the mean of
its weights' bits, rounded up. The exponent needs enough bits to reach the largest weight, and a sign bit is
added. Compression counts 32 bits per weight of the original network against the bits of the dense matrices that
are left once removed units are cut out (the authors' computation: biases are not counted). The weights are then
rounded to a multiple of 2^-t of their layer and the network is tested at that precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

MANTISSA_BITS = 23  # float32's
FLOAT_BITS = 32


def weight_bits(variances: Tensor) -> Tensor:
    """Mantissa bits each weight's posterior variance allows: the count of t in 1..23 with 2^-t > 2 v."""
    ranks = torch.arange(1, MANTISSA_BITS + 1, dtype=torch.float64)
    return (2.0 ** -ranks[None, :] > 2.0 * variances.double().reshape(-1, 1)).sum(dim=1)


def layer_bits(variances: Tensor) -> int:
    """A layer's mantissa bits: the mean over its surviving weights (nonzero variance), rounded up."""
    alive = variances[variances > 0]
    return int(math.ceil(weight_bits(alive).double().mean().item())) if alive.numel() else 0


def exponent_bits(largest: float) -> int:
    """Exponent bits that reach the largest absolute weight (at least one)."""
    return max(1, math.ceil(math.log2(max(math.log2(largest), 0.0) + 1.0) + 1.0)) if largest > 0 else 1


def round_to_bits(weight: Tensor, bits: int) -> Tensor:
    """Each entry rounded to the nearest multiple of 2^-bits."""
    step = 2.0 ** -bits
    return torch.floor(weight / step + 0.5) * step


def kept_block(matrix: Tensor) -> Tensor:
    """The dense matrix left once all-zero rows and columns (removed units) are cut out."""
    rows, columns = matrix.abs().sum(dim=1) > 0, matrix.abs().sum(dim=0) > 0
    return matrix[rows][:, columns]


@dataclass(frozen=True)
class Precision:
    """Per layer mantissa bits, the shared exponent bits, and the compression each step reaches."""

    mantissa: tuple[int, ...]
    exponent: int
    after_pruning: float  # original weights / weights of the dense matrices left
    after_precision: float  # 32 bits per original weight / bits of what is left at its precision


def precision_of(weights: Sequence[Tensor], variances: Sequence[Tensor]) -> Precision:
    """The precision a pruned network's posterior allows (weights and variances zero where removed)."""
    if len(weights) != len(variances) or not weights:
        raise ValueError("one variance matrix per weight matrix, at least one layer")
    original = sum(w.numel() for w in weights)
    left = [kept_block(v).numel() for v in variances]
    mantissa = tuple(layer_bits(v) for v in variances)
    exponent = exponent_bits(max(float(w.abs().max()) for w in weights))
    bits = sum(size * (1 + exponent + m) for size, m in zip(left, mantissa))
    return Precision(mantissa, exponent, original / max(sum(left), 1), FLOAT_BITS * original / max(bits, 1))


def rounded(weights: Sequence[Tensor], precision: Precision) -> list[Tensor]:
    """The weights rounded to their layers' precision."""
    return [round_to_bits(w, bits) for w, bits in zip(weights, precision.mantissa)]
