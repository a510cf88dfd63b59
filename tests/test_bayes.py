"""Priors, the Bayesian layer and the ELBO's complexity cost against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bayesprune.model.bayes import BayesianLinear, BayesianMLP, GaussianPrior, ScaleMixturePrior
from bayesprune.model.elbo import elbo_terms, kl_weights


def _direct_mixture(w: float, pi: float, s1: float, s2: float) -> float:
    def normal(x: float, s: float) -> float:
        return math.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2 * math.pi))

    return math.log(pi * normal(w, s1) + (1 - pi) * normal(w, s2))


@pytest.mark.parametrize("w", [1e-8, -1e-8, 0.0, 0.01, 1.0, 10.0, -10.0])
def test_mixture_log_density_matches_direct_computation(w):
    pi, s1, s2 = 0.5, math.exp(0), math.exp(-6)
    prior = ScaleMixturePrior(pi, s1, s2)
    expected = _direct_mixture(w, pi, s1, s2)
    assert prior.log_prob(torch.tensor(w, dtype=torch.float64)).item() == pytest.approx(expected, rel=1e-12)
    assert prior.log_prob(torch.tensor(w)).item() == pytest.approx(expected, rel=1e-5)


def test_mixture_far_tail_is_finite_where_the_direct_sum_underflows():
    prior = ScaleMixturePrior(0.5, 1.0, math.exp(-6))
    value = prior.log_prob(torch.tensor([1e3], dtype=torch.float32)).item()
    assert math.isfinite(value) and value == pytest.approx(math.log(0.5) - 0.5 * math.log(2 * math.pi) - 5e5, rel=1e-6)


def test_gaussian_prior_density():
    prior = GaussianPrior(2.0)
    w = torch.tensor([0.3, -1.7], dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 2.0).log_prob(w)
    assert torch.allclose(prior.log_prob(w), expected)


def _layer(seed: int = 0) -> BayesianLinear:
    torch.manual_seed(seed)
    layer = BayesianLinear(6, 4).double()
    with torch.no_grad():  # a posterior away from the prior so the KL is large and non-trivial
        layer.weight_rho.uniform_(-2.0, 0.5)
        layer.bias_rho.uniform_(-2.0, 0.5)
    return layer


def _closed_form_kl(layer: BayesianLinear, prior: GaussianPrior) -> torch.Tensor:
    return (prior.kl_from(layer.weight_mu, F.softplus(layer.weight_rho))
            + prior.kl_from(layer.bias_mu, F.softplus(layer.bias_rho)))


def test_mc_complexity_cost_converges_to_closed_form_kl():
    layer, prior = _layer(), GaussianPrior(1.0)
    x = torch.zeros(1, 6, dtype=torch.float64)
    torch.manual_seed(1)
    draws = torch.stack([layer(x, True, prior)[1].detach() for _ in range(20000)])
    exact = _closed_form_kl(layer, prior).item()
    standard_error = draws.std().item() / math.sqrt(len(draws))
    assert abs(draws.mean().item() - exact) < 4 * standard_error
    assert standard_error < 0.02 * exact


def test_complexity_gradient_reaches_mu_and_rho_through_log_q():
    layer, prior = _layer(), GaussianPrior(1.0)
    x = torch.zeros(1, 6, dtype=torch.float64)
    torch.manual_seed(2)
    mc = sum(layer(x, True, prior)[1] for _ in range(4000)) / 4000
    mc_grads = torch.autograd.grad(mc, [layer.weight_mu, layer.weight_rho])
    exact_grads = torch.autograd.grad(_closed_form_kl(layer, prior), [layer.weight_mu, layer.weight_rho])
    for mc_grad, exact_grad in zip(mc_grads, exact_grads):
        assert torch.allclose(mc_grad, exact_grad, atol=0.06), (mc_grad - exact_grad).abs().max()
    # Without the entropy term the rho gradient would be off by d(-log sigma)/d rho, far outside this tolerance.
    entropy_part = torch.autograd.grad(-torch.log(F.softplus(layer.weight_rho)).sum(), layer.weight_rho)[0]
    assert entropy_part.abs().min() > 0.1


def test_initialisation_follows_the_study():
    layer = BayesianLinear(500, 300)
    for name, low, high in (("weight_mu", -0.2, 0.2), ("weight_rho", -5, -4), ("bias_mu", -0.2, 0.2), ("bias_rho", -5, -4)):
        values = getattr(layer, name)
        assert low <= values.min() and values.max() <= high and values.std() > 0


def test_one_weight_sample_is_shared_by_the_minibatch():
    model = BayesianMLP([5, 7, 3])
    x = torch.randn(1, 5).repeat(4, 1)
    out = model(x, sample=True)
    assert torch.equal(out, out[:1].expand_as(out))
    assert not torch.equal(model(x[:1], sample=True), model(x[:1], sample=True))
    assert torch.equal(model(x, sample=False), model(x, sample=False))


def test_elbo_terms_average_the_samples():
    torch.manual_seed(0)
    model, prior = BayesianMLP([5, 7, 3]), ScaleMixturePrior(0.5, 1.0, math.exp(-6))
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    torch.manual_seed(1)
    nll, complexity, logits = elbo_terms(model, x, y, prior, samples=2)
    torch.manual_seed(1)
    noise = model.draw_noise(2)
    parts = [model.forward_with_complexity(x, prior, noise=[(w[s], b[s]) for w, b in noise]) for s in range(2)]
    assert torch.allclose(nll, sum(F.cross_entropy(logit, y, reduction="sum") for logit, _ in parts) / 2)
    assert torch.allclose(complexity, sum(c for _, c in parts) / 2)
    assert logits.shape == (8, 3)


def test_blundell_kl_weights():
    weights = kl_weights("blundell", 600)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert weights[0].item() == pytest.approx(0.5, abs=1e-12)
    small = kl_weights("blundell", 3)
    assert small.tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert torch.all(weights[:-1] >= weights[1:])


def test_uniform_and_unknown_kl_weights():
    assert kl_weights("uniform", 4).tolist() == [0.25] * 4
    with pytest.raises(ValueError, match="blundell, uniform, study"):
        kl_weights("paper", 4)
