"""Fast BBB training step: the same estimator as `elbo.elbo_terms`, with fewer passes over the weights.

What it saves, per layer and minibatch, against the plain autograd path:
- all S weight samples are drawn and used at once (one GEMM for the first layer, batched GEMMs after),
  on activations laid out features x batch so that no weight gradient needs a transposing copy;
- softplus(rho) and log sigma are computed once, not once per sample;
- log q(w) is taken from the noise already drawn ((w - mu) / sigma == eps), and its eps^2 part,
  which has no gradient, never enters the autograd graph;
- the gradients of the complexity cost are written by hand (one custom autograd Function), so
  autograd stores and replays a handful of tensors instead of a dozen elementwise nodes.
On CPU float32 the whole per-parameter pass (noise, samples, complexity cost and its gradients,
and the backward fold into mu and rho) is one call of the C kernel in `bayesprune.native`.
A pruned network trains here too (fine-tuning): mu is read through its pruning mask, and the mask
multiplies the noise, so a pruned weight is never sampled, as in the plain path.
The random numbers are those the plain path draws (`BayesianMLP.draw_noise`), so both give the
same numbers up to floating-point rounding (tests/test_fused.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from bayesprune import native
from bayesprune.model.activation import relu_between
from bayesprune.model.bayes import HALF_LOG_2PI, BayesianLinear, BayesianMLP, Prior


class SampleWithCost(torch.autograd.Function):
    """S weight samples mu + softplus(rho) * eps and their summed complexity cost sum_s log q(w_s) - log p(w_s)."""

    @staticmethod
    def forward(ctx, mu: Tensor, rho: Tensor, eps: Tensor, mask: Tensor | None, prior: Prior,
                entropy_gradient: bool) -> tuple[Tensor, Tensor]:  # noqa: D102
        sigma = F.softplus(rho)
        noise = eps if mask is None else eps * mask  # a pruned weight is never sampled
        weights = torch.addcmul(mu, sigma, noise)
        log_prior, log_prior_grad = prior.log_prob_and_grad(weights)
        samples = eps.shape[0]
        log_q = -HALF_LOG_2PI * eps.numel() - samples * torch.log(sigma).sum() - 0.5 * torch.dot(eps.view(-1), eps.view(-1))
        ctx.save_for_backward(rho, sigma, noise, log_prior_grad)
        ctx.entropy_gradient = entropy_gradient
        return weights, log_q - log_prior

    @staticmethod
    def backward(ctx, grad_weights: Tensor, grad_cost: Tensor):  # noqa: D102
        rho, sigma, eps, log_prior_grad = ctx.saved_tensors
        total = torch.addcmul(grad_weights, log_prior_grad, -grad_cost)  # d loss / dw, through the net and log p
        grad_mu = total.sum(0)
        grad_sigma = (total * eps).sum(0)
        if ctx.entropy_gradient:  # d(-S log sigma) / d sigma; the study's code detached it
            grad_sigma = grad_sigma - grad_cost * eps.shape[0] / sigma
        return grad_mu, grad_sigma * torch.sigmoid(rho), None, None, None, None


class KernelSampleWithCost(torch.autograd.Function):
    """SampleWithCost in one C kernel call each way, its noise drawn inside from a stream key."""

    @staticmethod
    def forward(ctx, mu: Tensor, rho: Tensor, mask: Tensor | None, samples: int, key: int, prior: Prior,
                entropy_gradient: bool) -> tuple[Tensor, Tensor]:  # noqa: D102
        terms = prior.kernel_terms()
        weights, total, saved = native.sample_forward(
            mu, rho, samples, key, (terms.k1, terms.k2, terms.gap0, terms.mixture), entropy_gradient, mask)
        ctx.save_for_backward(weights, mu, *saved)  # the samples through the context, so no reference cycle keeps them
        ctx.spent = False
        constant = -samples * mu.numel() * (HALF_LOG_2PI + terms.log_const)
        return weights, mu.new_tensor(total + constant)

    @staticmethod
    def backward(ctx, grad_weights: Tensor, grad_cost: Tensor):  # noqa: D102
        if ctx.spent:
            raise RuntimeError("the BBB kernel's backward pass writes the gradients over its saved tensors, so it runs "
                               "once per forward pass (retain_graph=True is not supported; BAYESPRUNE_NATIVE=0 is)")
        ctx.spent = True
        weights, mu, *saved = ctx.saved_tensors
        if grad_weights is None:
            grad_weights = torch.zeros_like(weights)
        grad_mu, grad_rho = native.sample_backward(grad_weights, float(grad_cost), weights, mu, saved)
        return grad_mu.view(mu.shape), grad_rho.view(mu.shape), None, None, None, None, None


def posterior(layer: BayesianLinear, name: str) -> tuple[Tensor, Tensor, Tensor | None]:
    """mu, rho and the noise mask of a layer's weight or bias: mu through its pruning mask where pruned (the
    pruning hook runs only in forward, which this path never calls); no mask where none is set or the noise is
    left unmasked (the study's code)."""
    mask = getattr(layer, f"{name}_mu_mask", None)
    if mask is None:
        return getattr(layer, f"{name}_mu"), getattr(layer, f"{name}_rho"), None
    return getattr(layer, f"{name}_mu_orig") * mask, getattr(layer, f"{name}_rho"), mask if layer.mask_noise else None


def _sampled_layers(
    model: BayesianMLP, prior: Prior, samples: int, entropy_gradient: bool
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Per layer: S weight samples, S bias samples and their summed complexity cost."""
    layers = []
    if model.uses_kernel():
        for layer, (weight_key, bias_key) in zip(model.layers, model.noise_keys()):
            weights, weight_cost = KernelSampleWithCost.apply(
                *posterior(layer, "weight"), samples, weight_key, prior, entropy_gradient)
            biases, bias_cost = KernelSampleWithCost.apply(
                *posterior(layer, "bias"), samples, bias_key, prior, entropy_gradient)
            layers.append((weights, biases, weight_cost + bias_cost))
        return layers
    for layer, (weight_eps, bias_eps) in zip(model.layers, model.draw_noise(samples)):
        mu, rho, mask = posterior(layer, "weight")
        weights, weight_cost = SampleWithCost.apply(mu, rho, weight_eps, mask, prior, entropy_gradient)
        mu, rho, mask = posterior(layer, "bias")
        biases, bias_cost = SampleWithCost.apply(mu, rho, bias_eps, mask, prior, entropy_gradient)
        layers.append((weights, biases, weight_cost + bias_cost))
    return layers


def fused_elbo_terms(
    model: BayesianMLP, x: Tensor, y: Tensor, prior: Prior, samples: int, entropy_gradient: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Same contract and random numbers as `elbo.elbo_terms`: (NLL summed over batch, complexity, mean logits)."""
    hidden = x.T  # features x batch throughout, so every weight gradient comes out contiguous
    cost = x.new_zeros(())
    layers = _sampled_layers(model, prior, samples, entropy_gradient)
    for (weights, biases, layer_cost), activation in relu_between(layers):
        cost = cost + layer_cost
        if hidden.dim() == 2:  # the shared input: one GEMM of all samples' weights stacked
            hidden = torch.addmm(biases.reshape(-1, 1), weights.reshape(-1, weights.shape[-1]), hidden)
            hidden = hidden.view(samples, -1, len(x))
        else:
            hidden = torch.baddbmm(biases.unsqueeze(2), weights, hidden)
        hidden = activation(hidden)
    logits = hidden.transpose(1, 2)  # (S, B, classes)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(samples), reduction="sum")
    return nll / samples, cost / samples, logits.mean(0)
