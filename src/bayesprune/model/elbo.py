"""The minibatch ELBO of Bayes by Backprop and its named minibatch KL weightings."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from bayesprune.model.bayes import BayesianMLP, Prior


def _blundell(batches: int) -> Tensor:
    """pi_i = 2^(M-i) / (2^M - 1), i = 1..M: early minibatches carry most of the cost; sums to 1."""
    i = torch.arange(1, batches + 1, dtype=torch.float64)
    return torch.exp2(-i) / (1.0 - 2.0 ** (-batches))


def _uniform(batches: int) -> Tensor:
    """pi_i = 1 / M."""
    return torch.full((batches,), 1.0 / batches, dtype=torch.float64)


def _study(batches: int) -> Tensor:
    """The study's code: 2^(1-i) for batch index i = 0..M-1 (2, 1, 0.5, ...; sums to about 4)."""
    return torch.exp2(1.0 - torch.arange(batches, dtype=torch.float64))


KL_WEIGHTINGS: dict[str, Callable[[int], Tensor]] = {"blundell": _blundell, "uniform": _uniform, "study": _study}


def kl_weights(name: str, batches: int) -> Tensor:
    """Per-minibatch weights of the complexity cost over one epoch of `batches` minibatches."""
    if name not in KL_WEIGHTINGS:
        raise ValueError(f"unknown kl_weighting {name!r}; valid choices: {', '.join(KL_WEIGHTINGS)}")
    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}")
    return KL_WEIGHTINGS[name](batches)


def elbo_terms(
    model: BayesianMLP, x: Tensor, y: Tensor, prior: Prior, samples: int, entropy_gradient: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Monte Carlo estimates over `samples` weight draws: NLL summed over the batch, complexity cost, mean logits.

    The plain autograd reference: one forward pass per sample through BayesianLinear.
    """
    nll = complexity = logits_sum = None
    noise = model.draw_noise(samples)
    for sample in range(samples):
        layer_noise = [(weight[sample], bias[sample]) for weight, bias in noise]
        logits, cost = model.forward_with_complexity(x, prior, noise=layer_noise, entropy_gradient=entropy_gradient)
        sample_nll = F.cross_entropy(logits, y, reduction="sum")
        nll = sample_nll if nll is None else nll + sample_nll
        complexity = cost if complexity is None else complexity + cost
        logits_sum = logits if logits_sum is None else logits_sum + logits
    return nll / samples, complexity / samples, logits_sum / samples
