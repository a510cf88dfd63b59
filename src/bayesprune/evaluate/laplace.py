"""A Laplace approximation over a pruned point estimate, through laplace-torch (Daxberger et al. 2021), with the
pruning mask held: a removed weight stays removed in every predictive.

Two structures, both diagonal generalised Gauss-Newton approximations fitted on the training images:
`last_layer` covers the output layer's weights and biases and predicts with the linearised (GLM) predictive and
its probit link, the library's recommended pairing; `diagonal` covers every layer and predicts by Monte Carlo
over sampled weights (the GLM predictive's Jacobians over all 648 010 parameters cost about 20 minutes per
10 000 images on two cores). The last-layer probit predictive reads only the diagonal of the functional
variance, so it is computed from the library's own `functional_variance_fast` (each class's variance from the
features and the diagonal posterior) rather than from the full per-image covariance the library builds first: the
same probabilities to float rounding, about twenty times faster over the prior-precision search. How the mask is held: after fitting, the curvature of every removed weight is set to
infinity, so its posterior precision is infinite and its posterior variance exactly zero; a sample draws it at
its mean, zero, and the GLM predictive gives it no variance. The prior precision (one scalar) is chosen on the
validation split by the library's grid search on negative log-likelihood (computed afresh at every grid point,
probabilities floored at 1e-12 as everywhere in this report), never on test images.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from time import perf_counter

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from bayesprune.evaluate.passes import mlp_layers
from bayesprune.evaluate.uncertainty import nll
from bayesprune.model.models import MLP

# structure: (subset of weights, predictive, link approximation)
STRUCTURES = {"last_layer": ("last_layer", "glm", "probit"), "diagonal": ("all", "nn", "mc")}
# Prior precisions searched on validation NLL: 10^-2 .. 10^4, one per decade
PRIOR_PRECISION_RANGE = (-2.0, 4.0)
PRIOR_PRECISION_POINTS = 7
SAMPLES = 20  # Monte Carlo weight samples of the `diagonal` predictive
BATCH = 500


@functools.cache  # one class: each new subclass would join the library's registry of Laplace classes
def _last_layer_class() -> type:
    """laplace-torch's last-layer diagonal approximation, its probit predictive from the diagonal of the
    functional variance alone (imported late: the library's backends script functions with torch.jit, which
    warns)."""
    from laplace import DiagLLLaplace

    class DiagonalProbitLastLayer(DiagLLLaplace):
        """DiagLLLaplace whose probit predictive reads the functional variance's diagonal from
        `functional_variance_fast`, all the probit link uses, instead of the full per-image covariance."""

        _key = ("last_layer", "diag, probit from the diagonal")  # never chosen by the library's `Laplace` factory

        def _glm_forward_call(self, x, likelihood, joint=False, link_approx="probit", n_samples=100,
                              diagonal_output=False):
            """The probit predictive from the diagonal variance; every other predictive as the library gives it."""
            if joint or likelihood != "classification" or link_approx != "probit":
                return super()._glm_forward_call(x, likelihood, joint, link_approx, n_samples, diagonal_output)
            f_mu, f_var = self._glm_predictive_distribution(x, diagonal_output=True)
            kappa = 1 / torch.sqrt(1.0 + math.pi / 8 * f_var)  # the library's probit, on the same diagonal
            return torch.softmax(kappa * f_mu, dim=-1)

    return DiagonalProbitLastLayer


class LayerRemoved(ValueError):
    """Pruning removed a whole layer: the network is constant there, and no approximation can hold its mask."""


@dataclass
class FittedLaplace:
    """A fitted Laplace approximation, its chosen prior precision, and the seconds its fit and search took."""

    structure: str
    approximation: object
    prior_precision: float
    fit_seconds: float
    search_seconds: float


def plain_network(model: MLP) -> tuple[nn.Sequential, list[Tensor]]:
    """The deployed network (dropout off) as plain linear and ReLU layers carrying the pruned weights, and each
    parameter's keep mask in the order of its parameters."""
    if not isinstance(model, MLP):
        raise TypeError(f"a Laplace approximation here covers a point estimate (MLP); got {type(model).__name__}")
    linears = mlp_layers(model)[0]
    layers: list[nn.Module] = []
    for index, layer in enumerate(linears):
        plain = nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            plain.weight.copy_(layer.weight.detach())
            plain.bias.copy_(layer.bias.detach())
        layers += [plain] if index == len(linears) - 1 else [plain, nn.ReLU()]
    network = nn.Sequential(*layers).to(linears[0].weight.device).eval()
    masks = [parameter != 0 if name.endswith("weight") else torch.ones_like(parameter, dtype=torch.bool)
             for name, parameter in network.named_parameters()]
    for layer_index, mask in enumerate(masks[::2]):
        if not mask.any():
            raise LayerRemoved(f"pruning removed every weight of layer {layer_index + 1}: the network computes a "
                             f"constant there and no Laplace approximation can hold its mask")
    return network, masks


def validation_nll(probs: Tensor, y: Tensor) -> Tensor:
    """The grid search's loss: mean negative log-likelihood, probabilities floored as everywhere (`nll`)."""
    return torch.as_tensor(nll(probs, y))


def _loader(images: Tensor, labels: Tensor) -> DataLoader:
    """Batches of (image, label) in order."""
    if len(images) == 0:
        raise ValueError("a Laplace approximation needs images to fit and choose on; got an empty split")
    return DataLoader(TensorDataset(images, labels), batch_size=BATCH)


def fit_laplace(model: MLP, structure: str, train: tuple[Tensor, Tensor],
                validation: tuple[Tensor, Tensor]) -> FittedLaplace:
    """A `structure` Laplace approximation around the pruned model, fitted on train, its prior precision chosen
    on validation (see the module docstring)."""
    if structure not in STRUCTURES:
        raise ValueError(f"unknown Laplace structure {structure!r}; valid choices: {', '.join(STRUCTURES)}")
    subset, predictive, link = STRUCTURES[structure]
    network, masks = plain_network(model)
    train_loader, validation_loader = _loader(*train), _loader(*validation)
    started = perf_counter()
    with warnings.catch_warnings():  # the library's notices about its own defaults, which are set explicitly here
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        warnings.filterwarnings("ignore", message="By default `link_approx`")
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*")
        from laplace import Laplace  # imported here: its backends script functions with torch.jit, which warns
        from laplace.curvature import BackPackGGN

        approximation = (_last_layer_class()(network, "classification", backend=BackPackGGN)
                         if structure == "last_layer" else
                         Laplace(network, "classification", subset_of_weights=subset, hessian_structure="diag",
                                 backend=BackPackGGN))
        approximation.fit(train_loader)
        kept = torch.cat([mask.reshape(-1) for mask in masks])[-approximation.n_params:]
        approximation.H[~kept] = float("inf")  # a removed weight: infinite precision, zero variance
        fitted = perf_counter()
        approximation.optimize_prior_precision(
            method="gridsearch", pred_type=predictive, link_approx=link, n_samples=SAMPLES,
            val_loader=validation_loader, loss=validation_nll, log_prior_prec_min=PRIOR_PRECISION_RANGE[0],
            log_prior_prec_max=PRIOR_PRECISION_RANGE[1], grid_size=PRIOR_PRECISION_POINTS)
    return FittedLaplace(structure, approximation, float(approximation.prior_precision),
                         fitted - started, perf_counter() - fitted)


@torch.no_grad()
def laplace_probabilities(fitted: FittedLaplace, x: Tensor) -> Tensor:
    """The approximation's predictive class probabilities on x, batch by batch."""
    _, predictive, link = STRUCTURES[fitted.structure]
    return torch.cat([fitted.approximation(batch, pred_type=predictive, link_approx=link, n_samples=SAMPLES)
                      for batch in x.split(BATCH)])

