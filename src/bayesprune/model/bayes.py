"""Bayes by Backprop (Blundell et al. 2015, arXiv 1505.05424): priors and the Gaussian-posterior MLP."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bayesprune import native
from bayesprune.model.activation import relu_between
from bayesprune.model.softplus import softplus

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
STUDY_INIT_MU = 0.2  # the study's initialisation: mu ~ U(-0.2, 0.2), rho ~ U(-5, -4)
STUDY_INIT_RHO = (-5.0, -4.0)


class KernelTerms(NamedTuple):
    """A prior in the C kernel's terms: log p(w) = log_const - k2 w^2 (+ softplus(gap0 + (k2 - k1) w^2) if mixture)."""

    k1: float
    k2: float
    gap0: float
    mixture: bool
    log_const: float


class Prior(Protocol):
    """A factorised prior over weights."""

    def log_prob(self, w: Tensor) -> Tensor:
        """Elementwise log-density at w."""

    def log_prob_and_grad(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Summed log-density at w and its elementwise derivative d log p / dw."""

    def kernel_terms(self) -> KernelTerms:
        """The prior's constants for the C kernel."""


class GaussianPrior:
    """p(w) = N(0, sigma^2)."""

    def __init__(self, sigma: float) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.sigma = float(sigma)

    def log_prob(self, w: Tensor) -> Tensor:
        """Elementwise Gaussian log-density."""
        return -HALF_LOG_2PI - math.log(self.sigma) - 0.5 * (w / self.sigma) ** 2

    def log_prob_and_grad(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Summed log-density and d log p / dw = -w / sigma^2."""
        return self.log_prob(w).sum(), w * (-1.0 / self.sigma**2)

    def kernel_terms(self) -> KernelTerms:
        """One Gaussian: no mixture gap."""
        k = 0.5 / self.sigma**2
        return KernelTerms(k, k, 0.0, False, -HALF_LOG_2PI - math.log(self.sigma))

    def kl_from(self, mu: Tensor, sigma: Tensor) -> Tensor:
        """Closed-form KL(N(mu, sigma^2) || prior), summed."""
        ratio = (sigma / self.sigma) ** 2
        return 0.5 * (ratio + (mu / self.sigma) ** 2 - 1.0 - torch.log(ratio)).sum()


class LaplacePrior:
    """p(w) = exp(-|w| / b) / (2 b): the prior whose MAP estimate is an L1 penalty (no BBB kernel terms)."""

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.scale = float(scale)

    def log_prob(self, w: Tensor) -> Tensor:
        """Elementwise Laplace log-density."""
        return -math.log(2 * self.scale) - w.abs() / self.scale

    def log_prob_and_grad(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Summed log-density and d log p / dw = -sign(w) / b (0 at w = 0)."""
        return self.log_prob(w).sum(), torch.sign(w) * (-1.0 / self.scale)

    def kernel_terms(self) -> KernelTerms:
        """Not a Gaussian or a mixture of two: BBB's C kernel cannot take it."""
        raise NotImplementedError("the Laplace prior is for MAP training only; BBB takes a Gaussian or a scale mixture")


class ScaleMixturePrior:
    """p(w) = pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2), evaluated by logsumexp on w's device."""

    def __init__(self, pi: float, sigma1: float, sigma2: float) -> None:
        if not 0.0 < pi <= 1.0 or sigma1 <= 0 or sigma2 <= 0:
            raise ValueError(f"need 0 < pi <= 1 and sigmas > 0, got pi={pi}, sigma1={sigma1}, sigma2={sigma2}")
        self.pi, self.sigma1, self.sigma2 = float(pi), float(sigma1), float(sigma2)
        self._log_w1 = math.log(pi) - math.log(sigma1) - HALF_LOG_2PI
        self._log_w2 = (math.log1p(-pi) if pi < 1 else -math.inf) - math.log(sigma2) - HALF_LOG_2PI

    def log_prob(self, w: Tensor) -> Tensor:
        """Elementwise log-density, stable for |w| from 1e-8 to far in the tails."""
        w2 = w * w
        first = self._log_w1 - w2 * (0.5 / self.sigma1**2)
        second = self._log_w2 - w2 * (0.5 / self.sigma2**2)
        return torch.logaddexp(first, second)

    def log_prob_and_grad(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Summed log-density and d log p / dw, in few passes over w.

        With a_j = log w_j - w^2 / (2 sigma_j^2), log p = a_2 + softplus(a_1 - a_2), and a_1 - a_2 is affine
        in w^2; the responsibility of the wide component is sigmoid(a_1 - a_2).
        """
        if self.pi == 1.0:
            return GaussianPrior(self.sigma1).log_prob_and_grad(w)
        k1, k2 = 0.5 / self.sigma1**2, 0.5 / self.sigma2**2
        w2 = w * w
        gap = w2.mul(k2 - k1).add_(self._log_w1 - self._log_w2)  # a_1 - a_2
        total = self._log_w2 * w.numel() - k2 * w2.sum() + softplus(gap).sum()
        # -2 w (k1 wide + k2 narrow), each responsibility computed directly: 2 k2 - 2 (k2 - k1) wide loses
        # about 1 % of the wide component's gradient to cancellation in float32
        narrow = torch.sigmoid(-gap)
        grad = torch.sigmoid_(gap).mul_(-2.0 * k1).sub_(narrow.mul_(2.0 * k2)).mul_(w)
        return total, grad

    def kernel_terms(self) -> KernelTerms:
        """The mixture through its gap a_1 - a_2 (a single Gaussian when pi is 1)."""
        if self.pi == 1.0:
            return GaussianPrior(self.sigma1).kernel_terms()
        return KernelTerms(0.5 / self.sigma1**2, 0.5 / self.sigma2**2, self._log_w1 - self._log_w2, True, self._log_w2)


class BayesianLinear(nn.Module):
    """Linear layer with a diagonal Gaussian posterior N(mu, softplus(rho)^2) on weights and biases."""

    def __init__(
        self, in_features: int, out_features: int, init_mu: float = STUDY_INIT_MU,
        init_rho: tuple[float, float] = STUDY_INIT_RHO,
    ) -> None:
        super().__init__()
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-init_mu, init_mu))
        self.weight_rho = nn.Parameter(torch.empty(out_features, in_features).uniform_(*init_rho))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-init_mu, init_mu))
        self.bias_rho = nn.Parameter(torch.empty(out_features).uniform_(*init_rho))
        self.mask_noise = True  # pruned weights get no noise; False only to reproduce the study's code

    def draw_noise(self, samples: int, keys: tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
        """Standard normal noise for `samples` weight and bias draws: (S, out, in) and (S, out).

        From the C kernel's generator and the given stream keys, or from torch.randn without keys.
        """
        if keys is not None:
            return tuple(native.normals(samples, p.shape, key).to(p.dtype)
                         for p, key in zip((self.weight_rho, self.bias_rho), keys))
        like = {"device": self.weight_rho.device, "dtype": self.weight_rho.dtype}
        weight = torch.randn((samples, *self.weight_rho.shape), **like)
        bias = torch.randn((samples, *self.bias_rho.shape), **like)
        return weight, bias

    def _draw(
        self, name: str, prior: Prior | None, eps: Tensor | None = None, entropy_gradient: bool = True,
        sigma: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One sample mu + sigma * eps of weight or bias (noise masked where pruned), and log q - log p; sigma is
        softplus(rho), computed here unless given."""
        mu, rho = getattr(self, f"{name}_mu"), getattr(self, f"{name}_rho")
        sigma = F.softplus(rho) if sigma is None else sigma
        eps = torch.randn_like(mu) if eps is None else eps
        noise = sigma * eps
        mask = getattr(self, f"{name}_mu_mask", None)
        if mask is not None and self.mask_noise:
            noise = noise * mask
        value = mu + noise
        if prior is None:
            return value, value.new_zeros(())
        # log q(w) from the noise already drawn: (w - mu) / sigma == eps, so this is exact.
        log_q = -(HALF_LOG_2PI * mu.numel()) - torch.log(sigma).sum() - 0.5 * (eps * eps).sum()
        if not entropy_gradient:  # the study's code: log q(w) enters the loss as a constant
            log_q = log_q.detach()
        return value, log_q - prior.log_prob(value).sum()

    def sigmas(self) -> tuple[Tensor, Tensor]:
        """The posterior's standard deviations softplus(rho) of the weights and of the bias."""
        return F.softplus(self.weight_rho), F.softplus(self.bias_rho)

    def sample_weights(self, sigmas: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """One draw of the weights, then of the bias (noise masked where pruned), as the sampled forward draws them;
        `sigmas` (from `sigmas()`) spares computing them again for every draw."""
        weight_sigma, bias_sigma = sigmas or (None, None)
        return self._draw("weight", None, sigma=weight_sigma)[0], self._draw("bias", None, sigma=bias_sigma)[0]

    def forward(
        self, x: Tensor, sample: bool = True, prior: Prior | None = None,
        noise: tuple[Tensor, Tensor] | None = None, entropy_gradient: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """Output with one weight sample (or the posterior mean), and the sample's log q - log p."""
        if not sample:
            return F.linear(x, self.weight_mu, self.bias_mu), x.new_zeros(())
        weight_eps, bias_eps = noise if noise is not None else (None, None)
        weight, weight_cost = self._draw("weight", prior, weight_eps, entropy_gradient)
        bias, bias_cost = self._draw("bias", prior, bias_eps, entropy_gradient)
        return F.linear(x, weight, bias), weight_cost + bias_cost


class BayesianMLP(nn.Module):
    """ReLU MLP of BayesianLinear layers; one weight sample per forward pass, shared by the minibatch."""

    def __init__(
        self, sizes: Sequence[int], init_mu: float = STUDY_INIT_MU, init_rho: tuple[float, float] = STUDY_INIT_RHO
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            BayesianLinear(a, b, init_mu, init_rho) for a, b in zip(sizes[:-1], sizes[1:]))
        self.use_kernel = True  # False: the PyTorch sampling pass even where the C kernel runs (same noise)

    def uses_kernel(self) -> bool:
        """Whether training draws noise and samples through the C kernel (CPU float32 with the kernel built)."""
        return self.use_kernel and native.runs_on(self.layers[0].weight_rho)

    def noise_keys(self) -> list[tuple[int, int]]:
        """One (weight, bias) pair of kernel stream keys per layer, from the torch generator (so seeds rule them)."""
        keys = torch.randint(0, native.KEY_RANGE, (len(self.layers), 2)).tolist()
        return [tuple(pair) for pair in keys]

    def draw_noise(self, samples: int) -> list[tuple[Tensor, Tensor]]:
        """Noise for `samples` draws of every layer, as the kernel draws it wherever it is built, else torch.randn."""
        if native.runs_on(self.layers[0].weight_rho):
            return [layer.draw_noise(samples, keys) for layer, keys in zip(self.layers, self.noise_keys())]
        return [layer.draw_noise(samples) for layer in self.layers]

    def forward_with_complexity(
        self, x: Tensor, prior: Prior | None, sample: bool = True,
        noise: list[tuple[Tensor, Tensor]] | None = None, entropy_gradient: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """Logits and the Monte Carlo complexity cost log q(w) - log p(w) of the weights used."""
        cost = x.new_zeros(())
        for index, (layer, activation) in enumerate(relu_between(self.layers)):
            x, layer_cost = layer(x, sample, prior, None if noise is None else noise[index], entropy_gradient)
            cost = cost + layer_cost
            x = activation(x)
        return x, cost

    def forward(self, x: Tensor, sample: bool = True) -> Tensor:
        """Logits from one weight sample, or from the posterior mean when sample is False."""
        return self.forward_with_complexity(x, None, sample)[0]
