"""Temperature scaling (Guo et al. 2017): one scalar T that divides a trained network's logits, fitted by the
negative log-likelihood of the validation split; the network's predictions (its argmax) do not change."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_T_BOUNDS = (math.log(0.05), math.log(20.0))  # the temperatures searched: sharpen 20x to soften 20x


def validation_nll(logits: Tensor, y: Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of labels y under softmax(logits / temperature)."""
    return F.cross_entropy(logits / temperature, y).item()


def fit_temperature(logits: Tensor, y: Tensor) -> float:
    """The temperature that minimises the validation NLL of `logits` (one row per validation image), searched on
    a log scale between LOG_T_BOUNDS."""
    if logits.ndim != 2 or len(logits) == 0 or len(logits) != len(y):
        raise ValueError(f"temperature scaling needs one row of logits per validation label; got logits of shape "
                         f"{tuple(logits.shape)} and {len(y)} labels (is the validation split empty?)")
    from scipy.optimize import minimize_scalar  # here: every run's scoring imports this module, few runs fit T

    logits, y = logits.detach().double(), y.detach()
    found = minimize_scalar(lambda log_t: validation_nll(logits, y, math.exp(log_t)), bounds=LOG_T_BOUNDS,
                            method="bounded", options={"xatol": 1e-4})
    return math.exp(found.x)


def scaled_probabilities(logits: Tensor, temperature: float) -> Tensor:
    """The calibrated predictive distribution: softmax(logits / temperature)."""
    if not temperature > 0:
        raise ValueError(f"a temperature must be positive, got {temperature}")
    return torch.softmax(logits / temperature, dim=-1)
