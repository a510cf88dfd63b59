"""Baseline MLPs and the factory that builds any method's network and prior from a config."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from bayesprune.config import RunConfig
from bayesprune.model.bayes import BayesianMLP, GaussianPrior, LaplacePrior, Prior, ScaleMixturePrior
from bayesprune.model.group_nj import GroupNJMLP
from bayesprune.model.sparse_vd import SparseVDMLP

INPUT_SIZE = 28 * 28
CLASSES = 10


class MLP(nn.Module):
    """ReLU MLP with dropout after each hidden layer and, optionally, on the input pixels."""

    def __init__(self, sizes: Sequence[int], dropout: float = 0.0, input_dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if input_dropout:
            layers.append(nn.Dropout(input_dropout))
        for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if index < len(sizes) - 2:
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Logits."""
        return self.net(x)


def layer_sizes(cfg: RunConfig) -> list[int]:
    """784, the hidden widths, 10."""
    return [INPUT_SIZE, *cfg.hidden, CLASSES]


def build_model(cfg: RunConfig) -> nn.Module:
    """The network a config describes (BBB, sparse variational dropout, BC-GNJ or a baseline MLP)."""
    if cfg.bayesian:
        return BayesianMLP(layer_sizes(cfg), cfg.init_mu, cfg.init_rho)
    if cfg.method == "sparsevd":
        return SparseVDMLP(layer_sizes(cfg))
    if cfg.method == "bcgnj":
        return GroupNJMLP(layer_sizes(cfg))
    return MLP(layer_sizes(cfg), dropout=cfg.dropout, input_dropout=cfg.input_dropout)


def initial_model(cfg: RunConfig) -> nn.Module:
    """The network a config describes as training starts it: initialised from the run's seed."""
    torch.manual_seed(cfg.seed)
    return build_model(cfg)


def build_prior(cfg: RunConfig) -> Prior:
    """The prior a config describes: BBB's, or the one a MAP method's penalty is the negative log of."""
    sigma1 = math.exp(cfg.prior_log_sigma1)
    if cfg.prior == "gaussian":
        return GaussianPrior(sigma1)
    if cfg.prior == "laplace":
        return LaplacePrior(sigma1)
    return ScaleMixturePrior(cfg.prior_pi, sigma1, math.exp(cfg.prior_log_sigma2))


def training_prior(cfg: RunConfig) -> Prior | None:
    """The prior training puts on the weights: BBB's and the MAP methods', None for the rest."""
    return build_prior(cfg) if cfg.bayesian or cfg.penalty else None
