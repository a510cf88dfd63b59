"""Fine-tuning after pruning: the masks stay fixed while the model's own objective trains what is left."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from bayesprune.config import RunConfig
from bayesprune.model.elbo import kl_weights
from bayesprune.model.models import build_prior
from bayesprune.training.train import build_optimizer, epoch_minibatches, epoch_seed, training_step

FINETUNE_STREAM = 500_000  # offset of fine-tuning's epoch seeds, apart from training's


def finetune(model: nn.Module, cfg: RunConfig, x: Tensor, y: Tensor, epochs: int) -> nn.Module:
    """`epochs` epochs of cfg's objective (the ELBO for BBB) on (x, y) with model's pruning masks held fixed.

    Pruned weights stay at zero and, for BBB, draw no noise; the step is the plain autograd ELBO, since the
    fused step reads the raw parameters and would not see the masks. A fresh optimizer at cfg's learning rate.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fine-tuning epochs must be an integer >= 0, got {epochs!r}")
    plain = dataclasses.replace(cfg, fused_elbo=False)
    prior = build_prior(cfg) if cfg.bayesian else None
    optimizer = build_optimizer(plain, model)
    batches = math.ceil(len(x) / cfg.batch_size)
    kl = kl_weights(cfg.kl_weighting, batches).to(device=x.device, dtype=torch.float32)
    for epoch in range(epochs):
        torch.manual_seed(epoch_seed(cfg.seed, FINETUNE_STREAM + epoch))
        model.train()
        for images, labels, kl_weight in epoch_minibatches(cfg, x, y, kl):
            training_step(plain, model, prior, optimizer, images, labels, kl_weight)
    return model
