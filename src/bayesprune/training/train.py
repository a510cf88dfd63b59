"""One training loop for every method: baselines by cross-entropy, BBB by the minibatch ELBO."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from bayesprune.config import SELECTION_MARGIN, SELECTIONS, TARGET_RULES, TARGETS, RunConfig, target_score
from bayesprune.data.augment import augments, random_affine
from bayesprune.data.datasets import batch_indices
from bayesprune.data.splits import scored_split, training_splits
from bayesprune.host import resolve_device
from bayesprune.model.bayes import Prior
from bayesprune.evaluate.diagnostics import initial_sigmas, posterior_record
from bayesprune.model.elbo import elbo_terms, kl_weights
from bayesprune.evaluate.scores import accuracy, mean_logits, pruned_accuracy
from bayesprune.model.models import initial_model, training_prior
from bayesprune.model.penalty import negative_log_prior
from bayesprune.compress.prune import sparsity
from bayesprune.model.group_nj import GroupNJMLP
from bayesprune.model.sparse_vd import SparseVDMLP, VariationalMLP
from bayesprune.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from bayesprune.training.fused import fused_elbo_terms
from bayesprune.training.graphs import GraphedStep, graphs_enabled
from bayesprune.training.heap import keep_freed_memory

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainResult:
    """A trained model with its per-epoch history."""

    config: RunConfig
    model: nn.Module
    history: list[dict[str, float]]
    device: str


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of one epoch's permutation, dropout masks and weight noise (so a resumed run matches)."""
    return seed * 1_000_003 + epoch


def epoch_minibatches(
    cfg: RunConfig, x: torch.Tensor, y: torch.Tensor, kl: torch.Tensor
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch's minibatches in a fresh permutation: images (augmented where the study augmented), labels,
    and the complexity cost's weight from kl (one per minibatch)."""
    augment = augments(cfg)
    for step, index in enumerate(batch_indices(len(x), cfg.batch_size, x.device)):
        yield (random_affine(x[index]) if augment else x[index]), y[index], kl[step]


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Every parameter group's learning rate, written into the tensor a captured CUDA graph reads where it is one."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = value


def build_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam or SGD (with momentum) over all parameters, as one fused kernel per step (capturable on CUDA)."""
    if cfg.optimizer == "adam":
        on_cuda = next(model.parameters()).is_cuda
        lr = torch.tensor(cfg.lr, device="cuda") if on_cuda and cfg.lr_schedule != "constant" else cfg.lr  # graph-safe
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True, capturable=on_cuda)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, fused=True)


def training_step(
    cfg: RunConfig, model: nn.Module, prior: Prior | None, optimizer: torch.optim.Optimizer,
    x: torch.Tensor, y: torch.Tensor, kl_weight: torch.Tensor,
) -> torch.Tensor:
    """One optimizer step on a minibatch; returns (objective, NLL, weighted complexity, correct) on the device.

    Baselines minimise the cross-entropy; sparse VD and BC-GNJ add their KL to their priors, the MAP methods the
    negative log of their prior, each weighted as BBB's complexity cost; BBB is the minibatch ELBO.
    """
    if not cfg.bayesian:
        logits = model(x)
        nll = F.cross_entropy(logits, y, reduction="sum")
        if isinstance(model, VariationalMLP):
            weighted = kl_weight * model.kl()
        elif prior is not None:
            weighted = kl_weight * negative_log_prior(model, prior)
        else:
            weighted = torch.zeros((), device=x.device)
    else:
        terms = fused_elbo_terms if cfg.fused_elbo else elbo_terms
        nll, complexity, logits = terms(model, x, y, prior, cfg.train_samples, not cfg.deviates("entropy_detached"))
        weighted = kl_weight * complexity
    objective = nll + weighted  # minus the minibatch ELBO
    optimizer.zero_grad(set_to_none=True)
    (objective / len(y)).backward()  # per-example scale: same step size for every method
    optimizer.step()
    if isinstance(model, GroupNJMLP):
        model.clip_variances()
    correct = (logits.argmax(dim=1) == y).sum()
    return torch.stack([objective.detach(), nll.detach(), weighted.detach(), correct.float()])


def step_function(
    cfg: RunConfig, model: nn.Module, prior: Prior | None, optimizer: torch.optim.Optimizer,
    x: torch.Tensor, y: torch.Tensor, kl_weight: torch.Tensor, graphed: bool = True,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """`training_step` as step(x, y, kl_weight): a CUDA graph captured on the example minibatch where
    graphed and graphs are enabled, else the plain call; the model and optimizer are left as they were."""
    def step(x: torch.Tensor, y: torch.Tensor, kl_weight: torch.Tensor) -> torch.Tensor:
        return training_step(cfg, model, prior, optimizer, x, y, kl_weight)

    return GraphedStep(step, model, optimizer, x, y, kl_weight) if graphed and graphs_enabled(x.device) else step


def _restore(path: Path, cfg: RunConfig, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load a checkpoint written by the same configuration into model and optimizer; return its state.

    A damaged checkpoint is never read as valid: it is set aside as `<name>.damaged` and training
    starts again from the first epoch.
    """
    try:
        state = load_checkpoint(path)
    except CheckpointError as error:
        path.replace(path.with_name(path.name + ".damaged"))
        warnings.warn(f"{error}; set aside as {path.name}.damaged, training from the first epoch", stacklevel=2)
        return {}
    if not RunConfig.from_dict(state["config"]).trains_like(cfg):
        raise CheckpointError(f"checkpoint {path} was written by another configuration; delete it or change out_dir")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state


def best_epoch(history: list[dict[str, Any]], score: str = "val_acc") -> int:
    """The epoch (1-based) with the highest validation score (`SELECTIONS`), the earliest on ties."""
    scores = [record[score] for record in history]
    return scores.index(max(scores)) + 1


def chosen_epoch(history: list[dict[str, Any]], rule: str) -> int:
    """The epoch (1-based) a rule keeps: the best of its score (`SELECTIONS`), or, chosen for f (`TARGET_RULES`), the
    best validation accuracy pruned to f among the epochs whose dense validation accuracy lies within
    SELECTION_MARGIN of the run's best; the earliest on ties."""
    if rule in SELECTIONS:
        return best_epoch(history, rule)
    score = target_score(rule)
    floor = max(record["val_acc"] for record in history) - SELECTION_MARGIN - 1e-12
    eligible = [(record[score], -index) for index, record in enumerate(history) if record["val_acc"] >= floor]
    return 1 - max(eligible)[1]


def recorded_rules(record: dict[str, Any]) -> list[str]:
    """The selection rules an epoch's record can serve: those whose score it holds."""
    return [rule for rule in SELECTIONS if rule in record] + [r for r in TARGET_RULES if target_score(r) in record]


def candidate_epochs(history: list[dict[str, Any]]) -> set[int]:
    """Epochs (1-based) some "chosen for f" rule may still keep, however training goes on: within the margin of the
    best dense validation accuracy so far, and bettered by no other epoch on both scores (an earlier one that
    equals it on both keeps the tie)."""
    if not history:
        return set()
    floor = max(record["val_acc"] for record in history) - SELECTION_MARGIN - 1e-12
    kept = set()
    for rule in (r for r in TARGET_RULES if target_score(r) in history[-1]):
        score = target_score(rule)
        points = [(r["val_acc"], r[score]) for r in history]
        for index, (dense, pruned) in enumerate(points):
            beaten = any((d >= dense and p >= pruned) if other < index else (d >= dense and p > pruned)
                         for other, (d, p) in enumerate(points) if other != index)
            if dense >= floor and not beaten:
                kept.add(index + 1)
    return kept


def training_done(cfg: RunConfig, history: list[dict[str, Any]]) -> bool:
    """Whether training has ended: the epoch cap is reached, or the last `patience` epochs changed the kept epoch of
    no rule the history records (dense, pruned and chosen for each target alike, so that every rule sees the same
    budget)."""
    if len(history) >= cfg.train_epochs:
        return True
    if not (cfg.patience and history):
        return False
    return all(len(history) - chosen_epoch(history, rule) >= cfg.patience for rule in recorded_rules(history[-1]))


def trained_state(cfg: RunConfig, state: dict[str, Any]) -> dict[str, Tensor]:
    """The model weights a run keeps: under early stopping those of the epoch `cfg.select` keeps, else the last.
    (A checkpoint keeps the kept epoch of every rule it records, so a run that differs only in its rule reuses it.)"""
    if not cfg.patience:
        return state["model"]
    if cfg.select in TARGET_RULES:
        return state["candidate_models"][chosen_epoch(state["history"], cfg.select)]
    return state["best_models"][cfg.select] if "best_models" in state else state["best_model"]


def validation_record(cfg: RunConfig, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """The epoch's validation scores: accuracy and NLL of the network, accuracy pruned by its own criterion to
    `cfg.select_fraction`, and with `cfg.targets` to every target sparsity too (`val_acc_pruned90`, ...)."""
    val_acc, val_nll = _scores(model, x, y)
    pruned = {f"val_acc_pruned{round(100 * f)}": pruned_accuracy(model, x, y, f) for f in TARGETS} if cfg.targets else {}
    own = f"val_acc_pruned{round(100 * cfg.select_fraction)}"
    at_select = pruned[own] if cfg.select_fraction in TARGETS and own in pruned else \
        pruned_accuracy(model, x, y, cfg.select_fraction)
    return {"val_acc": val_acc, "val_nll": val_nll, "val_acc_pruned": at_select, **pruned}


@torch.no_grad()
def _scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean NLL of the deterministic network (BBB: posterior mean) on (x, y)."""
    logits = mean_logits(model, x)
    return accuracy(logits, y), F.cross_entropy(logits, y).item()


def train(
    cfg: RunConfig,
    out_dir: Path | None = None,
    data_root: Path | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train cfg's model, checkpointing every epoch into out_dir and resuming from it if present.

    With a validation split, every epoch records the validation accuracy; with `patience`, training
    stops once that many epochs bring no better one, and the best epoch's weights are the result.
    Test accuracy is recorded per epoch for the curves only; nothing is chosen by it.
    """
    device = resolve_device(cfg.device)
    keep_freed_memory()
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # penalties drive weights towards zero; denormal floats slow CPU steps

    model = initial_model(cfg).to(device)
    start = initial_sigmas(model) if cfg.bayesian else []
    prior = training_prior(cfg)
    optimizer = build_optimizer(cfg, model)
    (x_train, y_train), validation = training_splits(cfg, data_root, device)
    x_test, y_test = scored_split(cfg, data_root, device)

    checkpoint = Path(out_dir) / CHECKPOINT if out_dir is not None else None
    state = _restore(checkpoint, cfg, model, optimizer) if checkpoint and checkpoint.exists() else {}
    history = state.get("history", [])
    best_models = state.get("best_models", {"val_acc": state["best_model"]} if "best_model" in state else {})
    candidates = state.get("candidate_models", {})  # the epochs a "chosen for f" rule may still keep

    n = len(x_train)
    batches = math.ceil(n / cfg.batch_size)
    # Complexity-cost weight of each minibatch; explicit and logged (sums to 1 over an epoch).
    kl = kl_weights(cfg.kl_weighting, batches).to(device=device, dtype=torch.float32)
    weights_count = sum(p.numel() for p in model.parameters()) // 2 if cfg.bayesian else 0
    sparse_vd = isinstance(model, SparseVDMLP)
    step_on = step_function(cfg, model, prior, optimizer, x_train[:cfg.batch_size], y_train[:cfg.batch_size], kl[0])
    bar = tqdm(
        total=cfg.train_epochs * batches, initial=len(history) * batches, disable=not progress,
        desc=f"{cfg.dataset} {cfg.method} seed {cfg.seed}", unit="step",
    )
    while not training_done(cfg, history):
        epoch = len(history)
        torch.manual_seed(epoch_seed(cfg.seed, epoch))
        set_learning_rate(optimizer, cfg.lr_at(epoch))
        model.train()
        started = time.perf_counter()
        totals = torch.zeros(4, device=device)  # objective, nll, weighted complexity, correct: no host sync
        for images, labels, kl_weight in epoch_minibatches(cfg, x_train, y_train, kl * cfg.kl_ramp(epoch)):
            totals += step_on(images, labels, kl_weight)
            bar.update()
        loss, nll_total, complexity_total, correct_total = totals.tolist()
        if not math.isfinite(loss):
            bar.close()
            raise FloatingPointError(
                f"non-finite loss ({loss}) in epoch {epoch + 1} of {cfg.dataset}/{cfg.method} (lr={cfg.lr}); "
                "the run is stopped and this epoch is not saved"
            )
        record = {
            "epoch": epoch + 1,
            "loss": loss / n,
            "nll": nll_total / n,
            "complexity": complexity_total,
            "train_acc": correct_total / n,
            "test_acc": accuracy(mean_logits(model, x_test), y_test),
            "seconds": time.perf_counter() - started,
            "lr": cfg.lr_at(epoch),
        }
        if validation is not None:
            record.update(validation_record(cfg, model, *validation))
        if cfg.bayesian:
            record["complexity_per_weight"] = complexity_total / weights_count
            record.update(posterior_record(model, start))
        if sparse_vd:
            record["sparsity"] = sparsity(model)  # weights above log alpha = 3
        if isinstance(model, GroupNJMLP):  # units below the removal threshold, inputs first: did the prior act
            record.update({f"units_kept_{k}": units for k, units in enumerate(model.units_below())})
        history.append(record)
        if cfg.patience:
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            for score in (s for s in SELECTIONS if s in record):
                if best_epoch(history, score) == len(history):
                    best_models[score] = weights
            alive = candidate_epochs(history)
            candidates = {epoch: kept for epoch, kept in {**candidates, len(history): weights}.items() if epoch in alive}
        bar.set_postfix(loss=f"{record['loss']:.4f}", **({"val_acc": f"{record['val_acc']:.4f}"} if validation is not None else {}))
        if checkpoint is not None:
            save_checkpoint(
                {"config": cfg.to_dict(), "epoch": epoch + 1, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "history": history,
                 **({"best_models": best_models, "candidate_models": candidates} if cfg.patience else {})},
                checkpoint,
            )
        if on_epoch_end is not None:
            on_epoch_end(record)
    bar.close()
    if cfg.patience:
        model.load_state_dict(trained_state(cfg, {"history": history, "best_models": best_models,
                                                  "candidate_models": candidates}))
    return TrainResult(cfg, model, history, str(device))
