"""The two steps of one run, as the train and prune notebooks call them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from bayesprune.config import PRUNING_DEVIATIONS, RunConfig, validate_fraction
from bayesprune.data.splits import scored_split, shifted_splits, training_splits
from bayesprune.host import resolve_device
from bayesprune.model.bayes import BayesianMLP
from bayesprune.model.group_nj import GroupNJMLP
from bayesprune.evaluate.diagnostics import dead_input_rows, dead_inputs, initial_sigmas, mu_sigma_histogram, snr_histogram
from bayesprune.compress.prune import sweep_criteria
from bayesprune.evaluate.posthoc import judged_fractions, posthoc_rows
from bayesprune.evaluate.scores import Parts, precision_rows, pruning_sweep, scored_sweep
from bayesprune.model.models import build_model, build_prior, initial_model
from bayesprune.model.weights import weight_matrices, weight_stats
from bayesprune.pipeline.results import run_keys, write_json, write_table
from bayesprune.training.checkpoint import load_checkpoint
from bayesprune.training.finetune import finetuned_sweep
from bayesprune.training.train import CHECKPOINT, TrainResult, train, trained_state, training_done

FINETUNED_PARTS = "finetuned-parts"  # each finished fine-tuned sweep while the run prunes, so a killed one resumes
HISTOGRAM_EDGES = torch.linspace(-0.5, 0.5, 201)


def train_run(cfg: RunConfig, run_dir: Path, data_root: Path | None = None, progress: bool = True) -> TrainResult:
    """Train (or resume) a run in run_dir and write its history table."""
    run_dir = Path(run_dir)
    result = train(cfg, out_dir=run_dir, data_root=data_root, progress=progress)
    write_table(result.history, run_keys(cfg.to_dict()), run_dir / "history.csv")
    return result


def load_trained(run_dir: Path, device: str = "cpu") -> tuple[RunConfig, nn.Module]:
    """The config and trained model stored in a run's checkpoint."""
    state = load_checkpoint(Path(run_dir) / CHECKPOINT, map_location=device)
    cfg = RunConfig.from_dict(state["config"])
    if not training_done(cfg, state["history"]):
        raise ValueError(f"{run_dir} holds a checkpoint of epoch {state['epoch']} of {cfg.train_epochs}: train it first")
    model = build_model(cfg)
    model.load_state_dict(trained_state(cfg, state))
    return cfg, model.to(device)


def histogram_rows(model: nn.Module) -> list[dict[str, Any]]:
    """Counts of all weights (BBB: posterior means) in fixed bins over [-0.5, 0.5], tails clipped in."""
    weights = torch.cat([w.flatten().cpu() for w in weight_matrices(model)]).clamp(-0.5, 0.5)
    counts = torch.histogram(weights, HISTOGRAM_EDGES).hist
    edges = HISTOGRAM_EDGES.tolist()
    return [{"bin_left": edges[i], "bin_right": edges[i + 1], "count": int(c)} for i, c in enumerate(counts)]


def pruning_ablation(
    model: BayesianMLP, x: Tensor, y: Tensor, fractions: Sequence[float], include_bias: bool, cfg: RunConfig,
    as_run: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """BBB's own-criterion sweep with the run's deviations (`as_run`: its rows, where the run's sweep scored them
    already), then with each pruning-time one fixed alone."""
    rows = []
    for fixed in ("none", *[d for d in PRUNING_DEVIATIONS if cfg.deviates(d)]):
        deviations = tuple(d for d in cfg.deviations if d != fixed)
        if fixed == "none" and as_run is not None:
            own = sweep_criteria(model, tuple(deviations))[0]
            sweep = [{k: v for k, v in row.items() if k != "val_accuracy_mean"} for row in as_run
                     if row["criterion"] == own]
        else:
            sweep = pruning_sweep(model, x, y, fractions, include_bias, cfg.eval_samples, cfg.seed, deviations, True)
        rows += [{"fixed": fixed, **row} for row in sweep]
    return rows


def write_posterior_tables(
    cfg: RunConfig, model: BayesianMLP, keys: dict[str, Any], run_dir: Path, data_root: Path | None
) -> None:
    """The end-of-training diagnostics of a BBB run: SNR density, |mu| vs sigma, the dead-input weights."""
    (x_fit, _), _ = training_splits(cfg, data_root, "cpu")
    start = initial_sigmas(initial_model(cfg))
    model = model.cpu()
    write_table(snr_histogram(model), keys, run_dir / "snr_histogram.csv")
    write_table(mu_sigma_histogram(model), keys, run_dir / "mu_sigma_histogram.csv")
    write_table(dead_input_rows(model, dead_inputs(x_fit), build_prior(cfg), start), keys, run_dir / "dead_inputs.csv")


def prune_run(
    run_dir: Path,
    fractions: Sequence[float],
    include_bias: bool = False,
    data_root: Path | None = None,
    device: str = "auto",
    finetune_epochs: int = 0,
    finetune_patience: int = 0,
    finetune_rates: Sequence[float] = (1.0,),
    posthoc_fractions: Sequence[float] = (),
) -> pd.DataFrame:
    """Pruning sweep of a trained run at every fraction and criterion (the own criterion also scored on the
    validation split, where the run has one); writes the pruning, uncertainty and weight tables, with
    finetune_epochs > 0 the own criterion's sweeps with fine-tuning (finetuned.csv), and, where the run has a
    validation split, temperature scaling and Laplace approximations at those posthoc_fractions it is judged at
(posthoc.csv, `evaluate.posthoc.judged_fractions`)."""
    run_dir = Path(run_dir)
    fractions = [validate_fraction(f) for f in fractions]  # before the model is loaded
    posthoc_fractions = [validate_fraction(f) for f in posthoc_fractions]
    if not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
    started = time.perf_counter()
    target = resolve_device(device)
    cfg, model = load_trained(run_dir, str(target))
    x, y = scored_split(cfg, data_root, target)
    fit, validation = training_splits(cfg, data_root, target)
    shifted = shifted_splits(cfg, data_root, target)
    keys = run_keys(cfg.to_dict())
    loaded = time.perf_counter()
    sweep = scored_sweep(model, (x, y), fractions, include_bias, cfg.eval_samples, cfg.seed, cfg.deviations,
                         validation=validation, shifted=shifted)
    parts = Parts({"loading": loaded - started, **sweep.parts.seconds})
    with parts.timing("tables"):
        write_table(sweep.uncertainty, keys, run_dir / "uncertainty.csv")
        write_table(sweep.bins, keys, run_dir / "reliability.csv")
        write_table(weight_stats(model), keys, run_dir / "weights.csv")
        write_table(histogram_rows(model), keys, run_dir / "weight_histogram.csv")
    if isinstance(model, GroupNJMLP):
        with parts.timing("precision"):
            write_table(precision_rows(model, x, y), keys, run_dir / "precision.csv")
    if isinstance(model, BayesianMLP):
        with parts.timing("ablation"):
            ablation = pruning_ablation(model, x, y, fractions, include_bias, cfg, sweep.rows)
            write_table(ablation, keys, run_dir / "ablation.csv")
        with parts.timing("posterior tables"):
            write_posterior_tables(cfg, model, keys, run_dir, data_root)
    judged = judged_fractions(cfg.select, posthoc_fractions)
    if judged and validation is not None:
        with parts.timing("post-hoc calibration and Laplace"):
            write_table(posthoc_rows(model, judged, fit, validation, (x, y), shifted, cfg.eval_samples, cfg.seed),
                        keys, run_dir / "posthoc.csv")
    if finetune_epochs:
        parts_dir = run_dir / FINETUNED_PARTS
        with parts.timing("fine-tuning"):
            finetuned = finetuned_sweep(model, cfg, fit, (x, y), fractions, finetune_epochs, validation,
                                        finetune_patience, finetune_rates, parts_dir)
        write_table(finetuned, keys, run_dir / "finetuned.csv")
        shutil.rmtree(parts_dir, ignore_errors=True)
    frame = write_table(sweep.rows, keys, run_dir / "pruning.csv")
    write_json({"seconds": time.perf_counter() - started, "seconds_by_part": parts.seconds,
                "seconds_by_network": sweep.networks.seconds,
                "include_bias": include_bias, "finetune_epochs": finetune_epochs,
                "finetune_patience": finetune_patience, "finetune_rates": list(finetune_rates),
                "posthoc_fractions": list(posthoc_fractions)}, run_dir / "prune.json")
    return frame
