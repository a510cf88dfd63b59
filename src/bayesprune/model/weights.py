"""Weight-distribution statistics: the study's 'wider weights prune better' argument, per layer."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bayesprune.model.bayes import BayesianMLP
from bayesprune.model.group_nj import GroupNJMLP
from bayesprune.model.sparse_vd import SparseVDMLP

NEAR_ZERO = 1e-2


def weight_matrices(model: nn.Module) -> list[Tensor]:
    """Each layer's weight matrix as the evaluated network uses it (BBB: the posterior mean; sparse VD: theta
    without the weights it leaves out), detached, in order."""
    if isinstance(model, BayesianMLP):
        return [layer.weight_mu.detach() for layer in model.layers]
    if isinstance(model, (SparseVDMLP, GroupNJMLP)):
        return [layer.deployed_weight().detach() for layer in model.layers]
    return [m.weight.detach() for m in model.modules() if isinstance(m, nn.Linear)]


def sigma_matrices(model: BayesianMLP) -> list[Tensor]:
    """Each BBB layer's posterior standard deviations softplus(rho)."""
    return [F.softplus(layer.weight_rho.detach()) for layer in model.layers]


def value_stats(values: Tensor) -> dict[str, float]:
    """Mean, std, excess kurtosis and share of |w| < 1e-2 of a set of values."""
    flat = values.double().flatten()
    centred = flat - flat.mean()
    variance = centred.pow(2).mean()
    return {
        "mean": flat.mean().item(),
        "std": variance.sqrt().item(),
        "kurtosis": (centred.pow(4).mean() / variance.pow(2) - 3.0).item(),
        "near_zero_share": (flat.abs() < NEAR_ZERO).double().mean().item(),
    }


def _layer_rows(parameter: str, matrices: list[Tensor]) -> list[dict[str, Any]]:
    """One row per layer plus an 'all' row over every matrix."""
    rows = [{"parameter": parameter, "layer": str(i + 1), **value_stats(w)} for i, w in enumerate(matrices)]
    rows.append({"parameter": parameter, "layer": "all", **value_stats(torch.cat([w.flatten() for w in matrices]))})
    return rows


def weight_stats(model: nn.Module) -> list[dict[str, Any]]:
    """Statistics of the weights (BBB: posterior means) per layer, and for BBB of the posterior sigmas too."""
    rows = _layer_rows("weight", weight_matrices(model))
    if isinstance(model, BayesianMLP):
        rows += _layer_rows("sigma", sigma_matrices(model))
    return rows
