"""Fine-tuning after pruning: the masks stay fixed while the model's own objective trains what is left; one-shot
and iterative (Han et al.'s prune-and-retrain) sweeps over pruning fractions."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bayesprune.atomic import atomic_write
from bayesprune.config import RunConfig
from bayesprune.model.elbo import kl_weights
from bayesprune.evaluate.scores import accuracy, mean_logits, scored_row
from bayesprune.model.models import training_prior
from bayesprune.compress.prune import global_prune, refresh_pruned, sweep_criteria
from bayesprune.training.train import build_optimizer, epoch_minibatches, epoch_seed, set_learning_rate, training_step

FINETUNE_STREAM = 500_000  # offset of fine-tuning's epoch seeds, apart from training's
SCHEDULES = ("one-shot", "iterative")


def finetune(
    model: nn.Module, cfg: RunConfig, x: Tensor, y: Tensor, epochs: int,
    validation: tuple[Tensor, Tensor] | None = None, patience: int = 0, rate: float = 1.0,
) -> int:
    """Up to `epochs` epochs of cfg's objective (the ELBO for BBB) on (x, y) with model's pruning masks held fixed;
    returns the epochs run.

    Pruned weights stay at zero and, for BBB, draw no noise (the fused step reads mu through its mask and
    masks the noise, as the plain path does). A fresh optimizer at `rate` times cfg's learning rate.
    With a validation split and patience (Han et al.'s "retrain until it recovers"), retraining stops once
    `patience` epochs bring no better validation accuracy, and the best epoch's weights are kept.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fine-tuning epochs must be an integer >= 0, got {epochs!r}")
    if not isinstance(patience, int) or patience < 0 or (patience and validation is None):
        raise ValueError(f"fine-tuning patience must be an integer >= 0 with a validation split, got {patience!r}")
    if not (isinstance(rate, (int, float)) and rate > 0):
        raise ValueError(f"fine-tuning rate factor must be > 0, got {rate!r}")
    tuned = dataclasses.replace(cfg, lr=cfg.lr * rate)
    prior = training_prior(cfg)
    optimizer = build_optimizer(tuned, model)
    batches = math.ceil(len(x) / cfg.batch_size)
    kl = kl_weights(cfg.kl_weighting, batches).to(device=x.device, dtype=torch.float32)
    best, best_state, since = -1.0, None, 0
    for epoch in range(epochs):
        torch.manual_seed(epoch_seed(cfg.seed, FINETUNE_STREAM + epoch))
        set_learning_rate(optimizer, tuned.lr_at(epoch, epochs))  # the training schedule's shape over these epochs
        model.train()
        for images, labels, kl_weight in epoch_minibatches(cfg, x, y, kl):
            training_step(tuned, model, prior, optimizer, images, labels, kl_weight)
        refresh_pruned(model)  # the pruned tensors as the last step left them, for every reader after this
        if patience:
            score = accuracy(mean_logits(model, validation[0]), validation[1])
            if score > best:
                best, best_state, since = score, copy.deepcopy(model.state_dict()), 0
            else:
                since += 1
                if since >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
        refresh_pruned(model)
    return epoch + 1 if epochs else 0


def finetuned_sweep(
    model: nn.Module,
    cfg: RunConfig,
    fit: tuple[Tensor, Tensor],
    scored: tuple[Tensor, Tensor],
    fractions: Sequence[float],
    epochs: int,
    validation: tuple[Tensor, Tensor] | None = None,
    patience: int = 0,
    rates: Sequence[float] = (1.0,),
    parts: Path | None = None,
) -> list[dict[str, Any]]:
    """The model's own criterion at every nonzero fraction, each pruned network fine-tuned (`finetune`) on fit and
    scored on `scored`, under two schedules: one-shot (each fraction pruned from the trained network) and
    iterative (the fractions in ascending order, each pruning the previous fine-tuned network further), each at
    every fine-tuning rate (a factor of the training rate). With a validation split each row also records the
    fine-tuned network's validation accuracy, for choosing a schedule and a rate on validation data.

    The iterative schedule's first step is the one-shot network at the first fraction (pruned from the trained
    network and fine-tuned from the same seeds), so it is taken from the one-shot sweep, not fine-tuned again.

    With `parts`, each finished (rate, schedule) sweep is kept there and read back instead of run again, so a
    sweep killed part-way resumes (each fine-tuning epoch draws from its own seed: the rows are the same)."""
    criterion = sweep_criteria(model)[0]
    settings = {"criterion": criterion, "fractions": sorted(f for f in fractions if f > 0), "epochs": epochs,
                "patience": patience, "validation": validation is not None}
    rows = []
    for rate in rates:
        first = None  # the one-shot network at the first fraction and its row: the iterative schedule's first step
        for schedule in SCHEDULES:
            kept = None if parts is None else Path(parts) / f"{schedule}-rate{rate:g}.json"
            if kept is not None and kept.exists() and (done := json.loads(kept.read_text()))["settings"] == settings:
                rows += done["rows"]
                continue
            reused = schedule == "iterative" and first is not None  # the one-shot sweep is done with its network
            carried = first[0] if reused else copy.deepcopy(model)
            swept = [{**first[1], "schedule": schedule}] if reused else []
            for fraction in settings["fractions"][len(swept):]:
                pruned = carried if schedule == "iterative" else copy.deepcopy(model)
                achieved = global_prune(pruned, fraction, criterion)
                ran = finetune(pruned, cfg, *fit, epochs, validation, patience, rate)
                row = {"schedule": schedule, "finetune_rate": rate, "criterion": criterion, "fraction": fraction,
                       "finetune_epochs": ran, "achieved_sparsity": achieved,
                       **scored_row(pruned, *scored, cfg.eval_samples, cfg.seed)}
                if validation is not None:
                    row["val_accuracy"] = accuracy(mean_logits(pruned, validation[0]), validation[1])
                if schedule == "one-shot" and first is None:
                    first = (pruned, row)
                swept.append(row)
            if kept is not None:
                with atomic_write(kept) as tmp:
                    tmp.write_text(json.dumps({"settings": settings, "rows": swept}))
            rows += swept
    return rows
