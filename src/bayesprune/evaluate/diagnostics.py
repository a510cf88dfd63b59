"""Did the variational posterior learn? Sigma movement, signal-to-noise in dB, and the weights that see no data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bayesprune.model.bayes import BayesianMLP, Prior

MOVED_FACTOR = 2.0  # a sigma counts as moved once it is more than twice or less than half its initial value
SIGMA_QUANTILES = (0.05, 0.5, 0.95)
SNR_DB_EDGES = torch.linspace(-60.0, 40.0, 101)  # Blundell et al.'s Figure 4 spans about -40 to 20 dB
LOG_MU_EDGES = torch.linspace(-6.0, 0.5, 66)  # log10 |mu|
LOG_SIGMA_EDGES = torch.linspace(-5.0, 0.5, 56)  # log10 sigma
# Quadrature nodes in units of q's sigma: 0 and +-10^(-10 .. 1.3), geometric, so that a prior component
# far narrower than q (the mixture's e^-6 spike) is resolved as well as q itself.
_HALF = np.logspace(-10.0, 1.3, 3000)
_NODES = np.concatenate([-_HALF[::-1], [0.0], _HALF])


def initial_sigmas(model: BayesianMLP) -> list[Tensor]:
    """A detached copy of every layer's weight sigmas, to measure movement against later."""
    return [F.softplus(layer.weight_rho.detach()).clone() for layer in model.layers]


def _all(tensors: list[Tensor]) -> Tensor:
    """Every element of a list of tensors, flattened into one float64 vector on the CPU."""
    return torch.cat([t.detach().flatten().double().cpu() for t in tensors])


def posterior_record(model: BayesianMLP, start: list[Tensor]) -> dict[str, float]:
    """Per-epoch diagnostics: sigma quantiles, the share of sigmas moved by more than MOVED_FACTOR, mean |mu|."""
    sigmas = [F.softplus(layer.weight_rho.detach()) for layer in model.layers]
    now, before = _all(sigmas), _all(start)
    record = {f"sigma_q{round(q * 100):02d}": v.item()
              for q, v in zip(SIGMA_QUANTILES, torch.quantile(now.float(), torch.tensor(SIGMA_QUANTILES)))}
    record["sigma_moved"] = ((now / before).log().abs() > math.log(MOVED_FACTOR)).double().mean().item()
    record["mu_abs_mean"] = _all([layer.weight_mu for layer in model.layers]).abs().mean().item()
    for index, units in enumerate(active_units(model), start=1):
        record[f"active_units_{index}"] = units
    return record


ACTIVE_SNR = 1.0  # a hidden unit is active if one of its outgoing weights has |mu| / sigma >= 1 (0 dB)


def active_units(model: BayesianMLP, level: float = ACTIVE_SNR) -> list[int]:
    """Per hidden layer, the units that still pass a signal on: at least one outgoing weight with SNR >= level.
    Mean-field variational inference switches whole units off (over-pruning, Trippe and Turner 2018): their
    outgoing weights all sit at the prior, noise above signal."""
    counts = []
    for layer in model.layers[1:]:
        snr = layer.weight_mu.detach().abs() / F.softplus(layer.weight_rho.detach())
        counts.append(int((snr >= level).any(dim=0).sum()))
    return counts


def kl_to_prior(prior: Prior, sigma: float, mu: float = 0.0) -> float:
    """KL(N(mu, sigma^2) || prior) for one weight, E_q[log p] by the trapezoid rule on geometric nodes."""
    density = np.exp(-0.5 * _NODES**2) / math.sqrt(2 * math.pi)
    log_p = prior.log_prob(torch.as_tensor(mu + sigma * _NODES, dtype=torch.float64)).numpy()
    expected_log_p = float(np.trapezoid(density * log_p, _NODES))
    return -math.log(sigma) - 0.5 * (1.0 + math.log(2 * math.pi)) - expected_log_p


def kl_optimal_sigma(prior: Prior, start: float | None = None) -> float:
    """The sigma of N(0, sigma^2) closest to the prior in KL(q || p): where a weight that sees no data should go.

    A symmetric unimodal prior puts the optimal mean at 0. The scale mixture's KL has a minimum near each
    component's sigma; with `start`, the one that descent from sigma = start reaches, else the global one.
    """
    grid = np.linspace(-12.0, 3.0, 1501)  # log sigma
    values = np.array([kl_to_prior(prior, math.exp(g)) for g in grid])
    best = int(np.argmin(values))
    if start is not None:
        best = int(np.clip(np.searchsorted(grid, math.log(start)), 0, len(grid) - 1))
        while True:
            lower = min((i for i in (best - 1, best + 1) if 0 <= i < len(grid)), key=lambda i: values[i])
            if values[lower] >= values[best]:
                break
            best = lower
    fine = np.linspace(grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)], 201)
    return math.exp(fine[int(np.argmin([kl_to_prior(prior, math.exp(g)) for g in fine]))])


def dead_inputs(x: Tensor) -> Tensor:
    """Input features that are zero in every row of x (MNIST's always-black border pixels)."""
    return (x != 0).sum(0) == 0


def snr_db(model: BayesianMLP) -> Tensor:
    """Every weight's signal-to-noise ratio |mu| / sigma in decibels, 10 log10 (Blundell et al.'s Figure 4)."""
    mu = _all([layer.weight_mu for layer in model.layers])
    sigma = _all([F.softplus(layer.weight_rho) for layer in model.layers])
    return 10.0 * torch.log10(mu.abs().clamp_min(1e-30) / sigma)


def _histogram(values: Tensor, edges: Tensor) -> list[dict[str, Any]]:
    """Counts of values in fixed bins, tails clipped into the outer bins."""
    clipped = values.float().clamp(edges[0].item(), edges[-1].item())
    counts = torch.histogram(clipped, edges).hist
    return [{"bin_left": edges[i].item(), "bin_right": edges[i + 1].item(), "count": int(c)}
            for i, c in enumerate(counts)]


def snr_histogram(model: BayesianMLP) -> list[dict[str, Any]]:
    """The density of SNR in dB over every weight, as histogram rows."""
    return _histogram(snr_db(model), SNR_DB_EDGES)


def mu_sigma_histogram(model: BayesianMLP) -> list[dict[str, Any]]:
    """2-D histogram of log10 |mu| against log10 sigma over every weight (cells with no weight left out)."""
    mu = _all([layer.weight_mu for layer in model.layers]).abs().clamp_min(1e-30).log10().float()
    sigma = _all([F.softplus(layer.weight_rho) for layer in model.layers]).log10().float()
    points = torch.stack([mu.clamp(LOG_MU_EDGES[0].item(), LOG_MU_EDGES[-1].item()),
                          sigma.clamp(LOG_SIGMA_EDGES[0].item(), LOG_SIGMA_EDGES[-1].item())], 1)
    counts = torch.histogramdd(points, [LOG_MU_EDGES, LOG_SIGMA_EDGES]).hist
    return [{"log10_mu_left": LOG_MU_EDGES[i].item(), "log10_mu_right": LOG_MU_EDGES[i + 1].item(),
             "log10_sigma_left": LOG_SIGMA_EDGES[j].item(), "log10_sigma_right": LOG_SIGMA_EDGES[j + 1].item(),
             "count": int(counts[i, j])}
            for i, j in zip(*torch.nonzero(counts, as_tuple=True))]


def dead_input_rows(model: BayesianMLP, dead: Tensor, prior: Prior, start: list[Tensor]) -> list[dict[str, Any]]:
    """First-layer weights fed by always-zero inputs against the rest, beside the KL optimum they should reach."""
    layer = model.layers[0]
    mu, sigma = layer.weight_mu.detach().cpu().double(), F.softplus(layer.weight_rho.detach()).cpu().double()
    sigma0 = start[0].cpu().double()
    optimum = kl_optimal_sigma(prior, sigma0.median().item())
    rows = []
    for group, columns in (("dead", dead.cpu()), ("live", ~dead.cpu())):
        if not columns.any():
            continue
        m, s, s0 = mu[:, columns], sigma[:, columns], sigma0[:, columns]
        rows.append({
            "inputs": group, "input_count": int(columns.sum()), "weights": m.numel(),
            "mu_abs_mean": m.abs().mean().item(), "sigma_median": s.median().item(),
            "sigma_initial_median": s0.median().item(), "sigma_kl_optimum": optimum,
            "sigma_kl_optimum_global": kl_optimal_sigma(prior),
            "snr_db_median": (10 * torch.log10(m.abs().clamp_min(1e-30) / s)).median().item(),
        })
    return rows
