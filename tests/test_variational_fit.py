"""The variational fit on data whose answer is known: weights fed by inputs that are always zero see no
likelihood gradient, so the ELBO's optimum for them is the KL optimum (mu = 0, sigma = the sigma closest
to the prior); weights whose inputs carry signal must stay away from it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bayesprune.config import RunConfig
from bayesprune.model.bayes import BayesianMLP, ScaleMixturePrior
from bayesprune.evaluate.diagnostics import kl_optimal_sigma, kl_to_prior
from bayesprune.model.models import build_prior
from bayesprune.training.train import build_optimizer, training_step

EXAMPLES, FEATURES, LIVE, BATCH, EPOCHS = 2000, 20, 10, 100, 200


def fit_dead_inputs(cfg: RunConfig, complexity_reaches_optimizer: bool = True) -> dict[str, float]:
    """Train a 20-16-2 BBB net on labels of the first 3 of 10 live inputs (10 more inputs are always 0)."""
    torch.manual_seed(0)
    x = torch.randn(EXAMPLES, FEATURES)
    x[:, LIVE:] = 0
    y = (x[:, 0] + x[:, 1] - x[:, 2] > 0).long()
    model = BayesianMLP([FEATURES, 16, 2], cfg.init_mu, cfg.init_rho)
    prior, optimizer = build_prior(cfg), build_optimizer(cfg, model)
    batches = EXAMPLES // BATCH
    kl_weight = torch.tensor(1.0 / batches if complexity_reaches_optimizer else 0.0)
    for _ in range(EPOCHS):
        order = torch.randperm(EXAMPLES)
        for start in range(0, EXAMPLES, BATCH):
            index = order[start:start + BATCH]
            training_step(cfg, model, prior, optimizer, x[index], y[index], kl_weight)
    first, second = model.layers
    mu, sigma = first.weight_mu.detach(), F.softplus(first.weight_rho.detach())
    return {
        "dead_mu": mu[:, LIVE:].abs().mean().item(), "dead_sigma": sigma[:, LIVE:].median().item(),
        "live_mu": mu[:, :LIVE].abs().mean().item(), "second_mu": second.weight_mu.detach().abs().mean().item(),
        "optimum": kl_optimal_sigma(prior, start=math.log1p(math.exp(sum(cfg.init_rho) / 2))),
    }


def at_kl_optimum(fit: dict[str, float]) -> bool:
    """Dead-input weights at the KL optimum: mean |mu| below the optimal sigma, median sigma within 25 % of it."""
    return fit["dead_mu"] < fit["optimum"] and abs(fit["dead_sigma"] / fit["optimum"] - 1) < 0.25


BASE = {"method": "bbb", "lr": 1e-3, "kl_weighting": "uniform"}


@pytest.fixture(scope="module")
def corrected_fit() -> dict[str, float]:
    """The method as described, with the study's prior and initialisation."""
    return fit_dead_inputs(RunConfig(**BASE))


def test_weights_that_see_no_data_reach_the_kl_optimum(corrected_fit):
    assert at_kl_optimum(corrected_fit), corrected_fit


def test_weights_whose_inputs_carry_signal_stay_away_from_it(corrected_fit):
    assert corrected_fit["live_mu"] > 10 * corrected_fit["optimum"], corrected_fit
    assert corrected_fit["second_mu"] > 10 * corrected_fit["optimum"], corrected_fit


@pytest.mark.slow  # a training run of its own; make test-slow runs it
def test_without_the_entropy_gradient_sigma_misses_the_optimum():
    fit = fit_dead_inputs(RunConfig(**BASE, protocol="custom", deviations=("entropy_detached",)))
    assert not at_kl_optimum(fit), fit
    assert fit["dead_sigma"] < 0.75 * fit["optimum"], fit  # only log p acts on sigma: it shrinks past the optimum


@pytest.mark.slow  # a training run of its own; make test-slow runs it
def test_a_complexity_cost_that_never_reaches_the_optimizer_leaves_them_at_initialisation():
    fit = fit_dead_inputs(RunConfig(**BASE), complexity_reaches_optimizer=False)
    assert not at_kl_optimum(fit), fit
    assert fit["dead_mu"] > 0.09  # U(-0.2, 0.2) has mean |mu| 0.1


def test_the_kl_optimum_of_a_gaussian_prior_is_its_own_sigma():
    cfg = RunConfig(method="bbb", prior="gaussian", prior_log_sigma1=-2.0)
    assert kl_optimal_sigma(build_prior(cfg)) == pytest.approx(math.exp(-2.0), rel=1e-3)
    assert kl_optimal_sigma(build_prior(cfg), start=0.01) == pytest.approx(math.exp(-2.0), rel=1e-3)


def test_the_mixture_prior_has_a_kl_minimum_at_each_component():
    prior = build_prior(RunConfig(method="bbb"))  # the study's: 1/2 N(0, 1) + 1/2 N(0, e^-12)
    assert kl_optimal_sigma(prior, start=0.01) == pytest.approx(math.exp(-6), rel=0.05)  # descent from the init
    assert kl_optimal_sigma(prior, start=0.5) == pytest.approx(1.0, rel=0.05)
    assert kl_optimal_sigma(prior) == kl_optimal_sigma(prior, start=0.5)  # the wide one is the global minimum


def test_kl_by_quadrature_matches_the_closed_form_and_monte_carlo():
    prior = ScaleMixturePrior(0.5, 1.0, math.exp(-6))
    torch.manual_seed(0)
    for sigma in (0.001, 0.0025, 0.03, 0.5):
        w = torch.randn(2_000_000, dtype=torch.float64) * sigma
        monte_carlo = (-math.log(sigma) - 0.5 * math.log(2 * math.pi) - 0.5 * (w / sigma) ** 2 - prior.log_prob(w)).mean()
        assert kl_to_prior(prior, sigma) == pytest.approx(monte_carlo.item(), abs=5e-3)
    gaussian = build_prior(RunConfig(method="bbb", prior="gaussian", prior_log_sigma1=-1.0))
    closed = gaussian.kl_from(torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.2], dtype=torch.float64)).item()
    assert kl_to_prior(gaussian, 0.2) == pytest.approx(closed, rel=1e-5)
