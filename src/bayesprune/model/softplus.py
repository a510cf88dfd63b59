"""softplus(x) = log(1 + e^x) in passes that vectorise: torch's own goes through log1p, which some CPU builds
run element by element (about ten times an exp here)."""

from __future__ import annotations

import torch
from torch import Tensor


class _Softplus(torch.autograd.Function):
    """max(x, 0) + log(1 + e^-|x|), with the exact gradient sigmoid(x)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102 - torch's interface
        ctx.save_for_backward(x)
        # |x| floored at 80: e^-80 ~ 2e-35 adds nothing to 1 in float32, and keeps the vector exp off its slow path
        # for inputs whose result underflows (most of the scale mixture's gaps)
        return x.clamp(min=0).add_(torch.exp(x.abs().clamp_(max=80.0).neg_()).add_(1).log_())

    @staticmethod
    def backward(ctx, upstream: Tensor) -> Tensor:  # noqa: D102 - torch's interface
        (x,) = ctx.saved_tensors
        return upstream * torch.sigmoid(x)


def softplus(x: Tensor) -> Tensor:
    """log(1 + e^x) within 1e-6 of torch's softplus (absolute, float32), several times faster on such CPUs."""
    return _Softplus.apply(x)
