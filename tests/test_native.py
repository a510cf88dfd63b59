"""The C kernel: its normal generator against the exact quantiles, its sampling pass against the PyTorch path."""

from __future__ import annotations

import math

import pytest
import torch

from bayesprune import native
from bayesprune.model.bayes import BayesianMLP, GaussianPrior, ScaleMixturePrior
from bayesprune.model.elbo import elbo_terms
from bayesprune.training.fused import fused_elbo_terms

pytestmark = pytest.mark.skipif(native.kernel() is None, reason="no C compiler: the kernel is not built here")

PRIORS = [ScaleMixturePrior(0.5, 1.0, math.exp(-6)), GaussianPrior(0.3)]


def test_every_24_bit_value_maps_to_its_exact_normal_quantile():
    bits = torch.arange(1 << 24, dtype=torch.int32)
    got = native.quantiles(bits).double()
    exact = torch.special.ndtri((bits.double() + 0.5) / 2**24)
    assert torch.isfinite(got).all()
    assert (got - exact).abs().max() < 5e-6
    assert (got[1:] >= got[:-1]).all()  # monotone, so no value is over- or under-drawn
    assert torch.equal(got, -got.flip(0))  # symmetric
    assert got.max() == pytest.approx(5.42, abs=0.01)  # the tails stop at u = 2^-25


def test_noise_is_standard_normal_and_ruled_by_its_key():
    z = native.normals(4, (1 << 18,), key=12345).view(-1)
    assert torch.equal(z, native.normals(4, (1 << 18,), key=12345).view(-1))
    other = native.normals(4, (1 << 18,), key=12346).view(-1)
    assert abs(torch.corrcoef(torch.stack([z, other]))[0, 1]) < 0.005
    assert abs(z.mean()) < 0.005 and z.std() == pytest.approx(1.0, abs=0.005)
    assert abs(torch.corrcoef(torch.stack([z[:-1], z[1:]]))[0, 1]) < 0.005  # neighbours independent
    # Kolmogorov-Smirnov distance to N(0, 1) over 2^20 draws; 0.0017 is the 1 % critical value.
    sorted_z = z.double().sort().values
    ecdf = torch.arange(1, len(z) + 1, dtype=torch.float64) / len(z)
    assert (ecdf - torch.special.ndtr(sorted_z)).abs().max() < 0.0017


def _loss_and_grads(model, use_kernel, prior, x, y, samples, entropy_gradient):
    torch.manual_seed(7)
    model.zero_grad()
    model.use_kernel = use_kernel
    nll, complexity, logits = fused_elbo_terms(model, x, y, prior, samples, entropy_gradient)
    (nll + 0.37 * complexity).backward()
    return nll.detach(), complexity.detach(), logits.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("prior", PRIORS, ids=["mixture", "gaussian"])
@pytest.mark.parametrize("samples", [1, 2, 3])
@pytest.mark.parametrize("entropy_gradient", [True, False], ids=["entropy", "detached"])
def test_kernel_step_matches_the_pytorch_step_on_the_same_noise(prior, samples, entropy_gradient):
    torch.manual_seed(0)
    model = BayesianMLP([700, 30, 5])  # 21000 and 150 weights: whole blocks, a ragged tail, a lone block
    x, y = torch.rand(16, 700), torch.randint(0, 5, (16,))
    kernel = _loss_and_grads(model, True, prior, x, y, samples, entropy_gradient)
    torch_path = _loss_and_grads(model, False, prior, x, y, samples, entropy_gradient)
    for a, b in zip(kernel[:3], torch_path[:3]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-4)
    for a, b in zip(kernel[3], torch_path[3]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


@pytest.mark.parametrize("prior", PRIORS, ids=["mixture", "gaussian"])
def test_kernel_cost_is_log_q_minus_log_p_in_double_precision(prior):
    torch.manual_seed(1)
    model = BayesianMLP([600, 3])
    layer, x, y = model.layers[0], torch.rand(4, 600), torch.zeros(4, dtype=torch.long)
    torch.manual_seed(2)
    noise = model.draw_noise(2)[0]  # the same keys, so the same noise, as the step below
    torch.manual_seed(2)
    cost = fused_elbo_terms(model, x, y, prior, 2)[1]
    expected = 0.0
    for mu, rho, eps in ((layer.weight_mu, layer.weight_rho, noise[0]), (layer.bias_mu, layer.bias_rho, noise[1])):
        mu, sigma, eps = mu.double(), torch.nn.functional.softplus(rho.double()), eps.double()
        log_q = (-0.5 * math.log(2 * math.pi) - sigma.log() - 0.5 * eps**2).sum()
        expected += (log_q - prior.log_prob(mu + sigma * eps).sum()).item() / 2
    assert cost.item() == pytest.approx(expected, rel=1e-5)


@pytest.fixture
def rebuilt_kernel():
    """native.kernel() looked up afresh in the test, and again after it (under the test's environment)."""
    native.kernel.cache_clear()
    yield
    native.kernel.cache_clear()


def test_the_kernel_can_be_switched_off(monkeypatch, rebuilt_kernel):
    monkeypatch.setenv("BAYESPRUNE_NATIVE", "0")
    assert native.kernel() is None
    assert not BayesianMLP([4, 3]).uses_kernel()
    monkeypatch.delenv("BAYESPRUNE_NATIVE")
    native.kernel.cache_clear()
    assert native.kernel() is not None


def test_a_failing_compiler_falls_back_with_a_warning(monkeypatch, tmp_path, rebuilt_kernel):
    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("BAYESPRUNE_CACHE", str(tmp_path))
    with pytest.warns(UserWarning, match="BBB kernel unavailable"):
        assert native.kernel() is None


def test_the_plain_reference_path_draws_the_kernel_noise():
    torch.manual_seed(0)
    model = BayesianMLP([20, 30, 5])
    x, y = torch.rand(8, 20), torch.randint(0, 5, (8,))
    results = []
    for terms in (elbo_terms, fused_elbo_terms):
        torch.manual_seed(3)
        results.append(terms(model, x, y, PRIORS[0], 2))
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-4)


def test_the_kernel_never_samples_a_pruned_weight_and_trains_a_pruned_network_as_pytorch_does():
    from bayesprune.compress.prune import snr_prune
    from bayesprune.training.fused import KernelSampleWithCost, SampleWithCost, posterior

    torch.manual_seed(0)
    model = BayesianMLP([700, 30, 5])
    snr_prune(model, 0.7)
    mu, rho, mask = posterior(model.layers[0], "weight")
    weights, cost = KernelSampleWithCost.apply(mu, rho, mask, 3, 11, PRIORS[0], True)
    pruned = mask == 0
    assert pruned.float().mean() > 0.5 and (weights[:, pruned] == 0).all() and (weights[:, ~pruned] != mu[~pruned]).all()
    eps = native.normals(3, mu.shape, 11).double()
    _, exact = SampleWithCost.apply(mu.double(), rho.double(), eps, mask.double(), PRIORS[0], True)
    assert cost.item() == pytest.approx(exact.item(), rel=1e-5)  # summed in double, pruned weights' terms included
    x, y = torch.rand(16, 700), torch.randint(0, 5, (16,))
    kernel = _loss_and_grads(model, True, PRIORS[0], x, y, 2, True)
    torch_path = _loss_and_grads(model, False, PRIORS[0], x, y, 2, True)
    assert torch.allclose(kernel[0], torch_path[0], rtol=1e-5) and torch.allclose(kernel[2], torch_path[2], atol=1e-4)
    for a, b in zip(kernel[3], torch_path[3]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_the_kernel_backward_runs_once_and_says_so_when_asked_twice():
    from bayesprune.training.fused import KernelSampleWithCost

    layer = BayesianMLP([30, 4]).layers[0]
    weights, cost = KernelSampleWithCost.apply(layer.weight_mu, layer.weight_rho, None, 2, 5, PRIORS[0], True)
    (weights.sum() + cost).backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="runs once per forward pass"):
        (weights.sum() + cost).backward()
