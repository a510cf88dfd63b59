"""Bayesian Compression with group normal-Jeffreys priors (BC-GNJ; Louizos, Ullrich and Welling 2017).

Each input unit i of a layer carries a scale z_i shared by all its outgoing weights, w_ij = z_i * w~_ij, with the
normal-Jeffreys prior p(z) proportional to 1/|z| and p(w~) = N(0, 1). The posterior is q(z_i) = N(mu_z, alpha_i
mu_z^2) and q(w~_ij) = N(mu_ij, sigma_ij^2) (the paper's eq. 6). The KL of the scales uses the log-uniform fit that
sparse variational dropout uses (`sparse_vd.kl_approx`, one implementation), the KL of the weights is the Gaussian
one (eq. 8). Training samples z per example and the pre-activations by the local reparameterisation; evaluation
uses the posterior mean weights mu_z * mu. A unit whose log alpha_i passes a threshold carries no information and
is removed with all its outgoing weights, and a hidden unit removed as an input of the next layer takes its
incoming weights along (the authors' masks). Followed from the paper and the authors' public code: scales
initialised at N(1, 0.01^2), weight means at N(0, 1/fan_in), every log variance at N(-9, 0.01^2), biases with a
Gaussian posterior and prior too, the first layer's weight variances clipped at 0.04 after every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bayesprune.model.sparse_vd import LOG_ALPHA_RANGE, VariationalMLP, kl_approx

UNIT_THRESHOLD = -3.0  # log alpha above which a unit is removed (the authors' LeNet-300-100 values are -2.8, -3, -5)
FIRST_LAYER_VARIANCE_CLIP = 0.04  # the authors clip the first layer's weight variances at this value
EPSILON = 1e-8


def gaussian_kl(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, exp(log_var)) || N(0, 1)) summed over the entries."""
    return 0.5 * (log_var.exp() + mu**2 - 1.0 - log_var).sum()


class GroupNJLinear(nn.Module):
    """A linear layer whose input units share a multiplicative scale with a normal-Jeffreys prior."""

    def __init__(self, fan_in: int, fan_out: int, variance_clip: float | None = None) -> None:
        super().__init__()
        self.z_mu = nn.Parameter(torch.empty(fan_in).normal_(1.0, 1e-2))
        self.z_log_var = nn.Parameter(torch.empty(fan_in).normal_(-9.0, 1e-2))
        self.weight_mu = nn.Parameter(torch.empty(fan_out, fan_in).normal_(0.0, 1.0 / math.sqrt(fan_in)))
        self.weight_log_var = nn.Parameter(torch.empty(fan_out, fan_in).normal_(-9.0, 1e-2))
        self.bias_mu = nn.Parameter(torch.zeros(fan_out))
        self.bias_log_var = nn.Parameter(torch.empty(fan_out).normal_(-9.0, 1e-2))
        self.variance_clip = variance_clip
        self.register_buffer("unit_mask", torch.ones(fan_in))  # input units kept (1) or removed (0)
        self.register_buffer("out_mask", torch.ones(fan_out))  # output units the next layer keeps

    @property
    def unit_log_alpha(self) -> Tensor:
        """log alpha_i = log var(z_i) - log mu_z_i^2 per input unit, clamped to the KL fit's range."""
        return torch.clamp(self.z_log_var - torch.log(self.z_mu**2 + EPSILON), *LOG_ALPHA_RANGE)

    def posterior_weight(self) -> Tensor:
        """The posterior mean of w = z * w~: mu_z * mu, under the unit masks."""
        mask = self.out_mask[:, None] * self.unit_mask[None, :]
        return self.weight_mu * self.z_mu[None, :] * mask

    def weight_variance(self) -> Tensor:
        """var(w~) per weight, zero where a pruning mask removed the weight (so a pruned weight is never drawn)."""
        variance = self.weight_log_var.exp()
        return variance * self.weight_mu_mask if hasattr(self, "weight_mu_mask") else variance

    def posterior_variance(self) -> Tensor:
        """The posterior variance of w = z * w~ per weight (zero where a unit or pruning mask removed it)."""
        weight_var, z_var = self.weight_variance(), self.z_log_var.exp()[None, :]
        if hasattr(self, "weight_mu_mask"):
            z_var = z_var * self.weight_mu_mask
        variance = self.z_mu[None, :] ** 2 * weight_var + z_var * self.weight_mu**2 + z_var * weight_var
        return variance * self.out_mask[:, None] * self.unit_mask[None, :]

    def deployed_weight(self) -> Tensor:
        """The weight matrix the evaluated network multiplies by."""
        return self.posterior_weight()

    def forward(self, x: Tensor) -> Tensor:
        """Sampled pre-activations in training (z per example, then the local reparameterisation), the posterior
        mean network under the unit masks otherwise."""
        if not self.training:
            return F.linear(x, self.deployed_weight(), self.bias_mu * self.out_mask)
        z = self.z_mu + torch.exp(0.5 * self.z_log_var) * torch.randn(x.shape[0], self.z_mu.numel(), device=x.device,
                                                                        dtype=x.dtype)
        xz = x * z * self.unit_mask
        mean = F.linear(xz, self.weight_mu, self.bias_mu)
        variance = F.linear(xz * xz, self.weight_variance(), self.bias_log_var.exp())
        return (mean + torch.sqrt(variance + EPSILON) * torch.randn_like(mean)) * self.out_mask

    def kl(self) -> Tensor:
        """KL(q || prior) of the layer: the unit scales by the log-uniform fit, weights and biases Gaussian."""
        return (kl_approx(self.unit_log_alpha).sum() + gaussian_kl(self.weight_mu, self.weight_log_var)
                + gaussian_kl(self.bias_mu, self.bias_log_var))

    @torch.no_grad()
    def clip_variances(self) -> None:
        """Clip the weights' and biases' variances at `variance_clip`, where set."""
        if self.variance_clip:
            bound = math.log(self.variance_clip)
            self.weight_log_var.clamp_(max=bound)
            self.bias_log_var.clamp_(max=bound)


class GroupNJMLP(VariationalMLP):
    """ReLU MLP of GroupNJLinear layers; the first layer's weight variances clipped as the authors did."""

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            GroupNJLinear(a, b, FIRST_LAYER_VARIANCE_CLIP if index == 0 else None)
            for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))

    def clip_variances(self) -> None:
        """After each optimizer step: the clipped layers' variances back under their bound."""
        for layer in self.layers:
            layer.clip_variances()

    @torch.no_grad()
    def units_below(self, threshold: float = UNIT_THRESHOLD) -> list[int]:
        """Input units per layer whose log alpha is below the threshold (those unit removal would keep)."""
        return [int((layer.unit_log_alpha < threshold).sum()) for layer in self.layers]

    @torch.no_grad()
    def remove_units(self, thresholds: float | Sequence[float] = UNIT_THRESHOLD) -> list[int]:
        """Remove every input unit whose log alpha passes its layer's threshold (a hidden unit removed as the next
        layer's input takes its incoming weights along); return the units kept per layer, inputs first."""
        count = len(self.layers)
        limits = [float(thresholds)] * count if isinstance(thresholds, (int, float)) else [float(t) for t in thresholds]
        if len(limits) != count:
            raise ValueError(f"{count} thresholds needed (one per layer), got {len(limits)}")
        for layer, limit in zip(self.layers, limits):
            layer.unit_mask.copy_((layer.unit_log_alpha < limit).float())
        for layer, following in zip(self.layers[:-1], self.layers[1:]):
            layer.out_mask.copy_(following.unit_mask)
        return [int(layer.unit_mask.sum()) for layer in self.layers] + [self.layers[-1].out_mask.numel()]

    @torch.no_grad()
    def restore_units(self) -> None:
        """Every unit back in."""
        for layer in self.layers:
            layer.unit_mask.fill_(1.0)
            layer.out_mask.fill_(1.0)
