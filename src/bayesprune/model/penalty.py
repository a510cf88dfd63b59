"""MAP training: a point estimate's complexity cost is the negative log of its prior over the weight matrices.

An L2 penalty is the negative log of a Gaussian prior, an L1 penalty that of a Laplace prior, and `<base>-mixture`
puts BBB's own scale-mixture prior (the same `bayes.ScaleMixturePrior`) on a network without a posterior. Training
weights this cost per minibatch as BBB's complexity cost and divides the objective by the batch size, so the
penalty enters per example as -log p(W) / N and its strength reads as the prior's scale. It is part of the
objective (coupled with Adam), not a decoupled decay (AdamW): only then is the optimum the MAP estimate.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bayesprune.model.bayes import Prior


class _NegativeLogPrior(torch.autograd.Function):
    """-log p(w) summed, with the gradient the prior computes with it in one pass (`Prior.log_prob_and_grad`)."""

    @staticmethod
    def forward(ctx, weight: Tensor, prior: Prior) -> Tensor:  # noqa: D102 - torch's interface
        total, grad = prior.log_prob_and_grad(weight.detach())
        ctx.save_for_backward(grad)
        return -total

    @staticmethod
    def backward(ctx, upstream: Tensor) -> tuple[Tensor, None]:  # noqa: D102 - torch's interface
        (grad,) = ctx.saved_tensors
        return -upstream * grad, None


def penalised_weights(model: nn.Module) -> list[Tensor]:
    """The weight matrices a MAP method's prior covers (as the forward pass uses them, masks applied)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


def negative_log_prior(model: nn.Module, prior: Prior) -> Tensor:
    """-log p(W) summed over every weight matrix: the MAP method's complexity cost."""
    return sum(_NegativeLogPrior.apply(weight, prior) for weight in penalised_weights(model))
