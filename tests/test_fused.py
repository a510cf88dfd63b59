"""The fast BBB step gives the plain autograd path's loss and gradients, and trains identically."""

from __future__ import annotations

import math

import pytest
import torch

from bayesprune.model.bayes import BayesianMLP, GaussianPrior, ScaleMixturePrior
from bayesprune.model.elbo import elbo_terms
from bayesprune.training.fused import fused_elbo_terms
from bayesprune.training.train import train

from .conftest import small_config


def _loss_and_grads(model, terms, prior, x, y, samples, kl_weight):
    torch.manual_seed(7)
    model.zero_grad()
    nll, complexity, logits = terms(model, x, y, prior, samples)
    (nll + kl_weight * complexity).backward()
    return nll.detach(), complexity.detach(), logits.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("prior", [ScaleMixturePrior(0.5, 1.0, math.exp(-6)), GaussianPrior(0.3)], ids=["mixture", "gaussian"])
@pytest.mark.parametrize("samples", [1, 2, 3])
def test_fused_terms_and_gradients_match_the_plain_path(prior, samples):
    torch.manual_seed(0)
    model = BayesianMLP([20, 30, 30, 5]).double()
    x, y = torch.rand(16, 20, dtype=torch.float64), torch.randint(0, 5, (16,))
    plain = _loss_and_grads(model, elbo_terms, prior, x, y, samples, 0.37)
    fused = _loss_and_grads(model, fused_elbo_terms, prior, x, y, samples, 0.37)
    for a, b in zip(plain[:3], fused[:3]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    for a, b in zip(plain[3], fused[3]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_fused_and_plain_training_agree_up_to_rounding(real_data_root):
    fused = train(small_config(method="bbb", epochs=2), progress=False)
    plain = train(small_config(method="bbb", epochs=2, fused_elbo=False), progress=False)
    for a, b in zip(fused.history, plain.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["test_acc"] == pytest.approx(b["test_acc"], abs=0.01)
    for (name, p), (_, q) in zip(fused.model.named_parameters(), plain.model.named_parameters()):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-4), name


@pytest.mark.parametrize("include_bias", [False, True], ids=["weights", "with-biases"])
def test_a_pruned_network_trains_on_the_fused_path_as_on_the_plain_one(include_bias):
    from bayesprune.compress.prune import snr_prune

    torch.manual_seed(0)
    model = BayesianMLP([20, 30, 30, 5]).double()
    snr_prune(model, 0.6, include_bias)
    with torch.no_grad():  # an optimizer step after pruning: the pruning hook's mu is stale until a forward pass
        for layer in model.layers:
            layer.weight_mu_orig.add_(0.05)
    x, y = torch.rand(16, 20, dtype=torch.float64), torch.randint(0, 5, (16,))
    prior = ScaleMixturePrior(0.5, 1.0, math.exp(-6))
    fused = _loss_and_grads(model, fused_elbo_terms, prior, x, y, 2, 0.37)
    plain = _loss_and_grads(model, elbo_terms, prior, x, y, 2, 0.37)
    for a, b in zip(plain[:3], fused[:3]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    for (name, _), a, b in zip(model.named_parameters(), plain[3], fused[3]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), name
    grads = dict(zip((name for name, _ in model.named_parameters()), fused[3]))
    pruned = model.layers[0].weight_mu_mask == 0
    assert pruned.any() and (grads["layers.0.weight_mu_orig"][pruned] == 0).all()  # no gradient where pruned
