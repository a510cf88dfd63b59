"""Sparse variational dropout (Molchanov et al. 2017): a dropout rate per weight, learned through the ELBO.

Each weight is w = theta * (1 + sqrt(alpha) * eps) with a log-uniform prior; the additive reparameterisation
trains theta and log sigma^2 = log alpha + log theta^2 instead of alpha, and the local reparameterisation
samples each unit's pre-activation, not each weight. Weights with log alpha above 3 (dropout rate above
about 0.95) carry no information and are removed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bayesprune.model.activation import relu_between
from bayesprune.model.softplus import softplus

# Molchanov et al.'s fit of -KL(q || log-uniform prior) as a function of log alpha (their eq. 14).
K1, K2, K3 = 0.63576, 1.87320, 1.48695
LOG_ALPHA_THRESHOLD = 3.0  # weights above it are removed (their eq. 15 and section 4)
LOG_ALPHA_RANGE = (-10.0, 10.0)  # clamped, as in their code, so the KL fit stays in its range
EULER_GAMMA = 0.5772156649015329


def kl_approx(log_alpha: Tensor) -> Tensor:
    """KL(q || prior) per weight from Molchanov et al.'s fit: k1 - k1 sigmoid(k2 + k3 log alpha) + log(1 + 1/alpha) / 2."""
    return K1 - K1 * torch.sigmoid(K2 + K3 * log_alpha) + 0.5 * softplus(-log_alpha)


def kl_monte_carlo(log_alpha: Tensor, samples: int, generator: torch.Generator | None = None) -> Tensor:
    """The same KL by Monte Carlo: E log|1 + sqrt(alpha) eps| - log(alpha) / 2 + (gamma + log 2) / 2, eps ~ N(0, 1).

    The constant makes the KL vanish as alpha grows (where E log|sqrt(alpha) eps| = log(alpha) / 2 - (gamma + log 2) / 2).
    """
    eps = torch.randn((samples, *log_alpha.shape), generator=generator, dtype=torch.float64)
    alpha_root = torch.exp(0.5 * log_alpha.double())
    expected = torch.log(torch.abs(1 + alpha_root * eps)).mean(0)
    return expected - 0.5 * log_alpha.double() + 0.5 * (EULER_GAMMA + math.log(2))


class SparseVDLinear(nn.Module):
    """A linear layer with a learned dropout rate per weight; deterministic at evaluation, weights above the threshold off."""

    def __init__(self, fan_in: int, fan_out: int, init_log_sigma2: float = -10.0) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.empty(fan_out, fan_in))
        self.log_sigma2 = nn.Parameter(torch.full((fan_out, fan_in), init_log_sigma2))
        self.bias = nn.Parameter(torch.zeros(fan_out))
        nn.init.kaiming_uniform_(self.theta, a=math.sqrt(5))  # nn.Linear's initialisation

    @property
    def log_alpha(self) -> Tensor:
        """log alpha = log sigma^2 - log theta^2 per weight, clamped to the KL fit's range."""
        return torch.clamp(self.log_sigma2 - torch.log(self.theta**2 + 1e-8), *LOG_ALPHA_RANGE)

    def kept(self) -> Tensor:
        """Mask of the weights that carry information (log alpha below the threshold)."""
        return self.log_alpha < LOG_ALPHA_THRESHOLD

    @property
    def pruned(self) -> bool:
        """Whether an explicit pruning mask sits on theta (then the mask alone decides, not the threshold)."""
        return hasattr(self, "theta_mask")

    def deployed_weight(self) -> Tensor:
        """The weight matrix the evaluated network multiplies by: theta under its pruning mask, else thresholded."""
        return self.theta if self.pruned else self.theta * self.kept()

    def forward(self, x: Tensor) -> Tensor:
        """Sampled pre-activations in training (local reparameterisation), the sparse mean network otherwise.

        Weights under a pruning mask get neither mean nor variance, so fine-tuning leaves them at zero.
        """
        if not self.training:
            return F.linear(x, self.deployed_weight(), self.bias)
        mean = F.linear(x, self.theta, self.bias)
        variance = torch.exp(self.log_sigma2) * self.theta_mask if self.pruned else torch.exp(self.log_sigma2)
        return mean + torch.sqrt(F.linear(x * x, variance) + 1e-8) * torch.randn_like(mean)

    def kl(self) -> Tensor:
        """KL(q || log-uniform prior) of the layer's weights."""
        return kl_approx(self.log_alpha).sum()


class VariationalMLP(nn.Module):
    """ReLU MLP of layers that each carry their KL to a prior (sparse VD's, BC-GNJ's)."""

    layers: nn.ModuleList

    def forward(self, x: Tensor) -> Tensor:
        """Logits."""
        for layer, activation in relu_between(self.layers):
            x = activation(layer(x))
        return x

    def kl(self) -> Tensor:
        """KL of every layer: the complexity cost of the ELBO."""
        return torch.stack([layer.kl() for layer in self.layers]).sum()


class SparseVDMLP(VariationalMLP):
    """ReLU MLP of SparseVDLinear layers."""

    def __init__(self, sizes: Sequence[int], init_log_sigma2: float = -10.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(SparseVDLinear(a, b, init_log_sigma2) for a, b in zip(sizes[:-1], sizes[1:]))

