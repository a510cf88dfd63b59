"""Execute a profile's grid of runs through the parameterized notebooks, atomically and resumably.

A run lives in results/<profile>/runs/<dataset>-<method>-<protocol>[-<variant>]-s<seed>/ once finished. While it runs it
lives in a hidden `.partial` folder beside it, which keeps its epoch checkpoints (so a killed grid
resumes mid-run) and, when a notebook fails, the executed notebook with the error. The finished
folder appears by one rename, after its manifest is written; it is skipped on later runs as long as
the configuration its manifest records is the one asked for.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from bayesprune import native
from bayesprune.config import RunConfig
from bayesprune.host import resolve_device
from bayesprune.pipeline.ensembles import write_ensembles
from bayesprune.pipeline.execute import execute_notebook
from bayesprune.pipeline.executors import Executor, LocalExecutor
from bayesprune.pipeline.lock import RunBusy, run_lock
from bayesprune.pipeline.manifest import (
    ResultsIntegrityError, code_version, environment, read_manifest, write_manifest,
)
from bayesprune.pipeline.profiles import Profile
from bayesprune.pipeline.run_paths import RunPaths
from bayesprune.training import graphs
from bayesprune.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from bayesprune.training.finetune import SCHEDULES
from bayesprune.training.train import CHECKPOINT

STEP_COST = {"bbb": 4.0, "sparsevd": 2.0, "bcgnj": 2.0}  # a step's cost in SGD steps on CPU (results/bench)
# The pruning sweep and the notebooks around a run, counted as epochs of SGD training; Monte Carlo scoring costs
# more, BBB's (every layer sampled) most: measured in `quick` on 2 CPU cores (results/bench/report), where SGD's
# notebooks took 3.5 epochs, Dropout's 9 and BBB's 16
NOTEBOOK_EPOCHS = 3.5
MONTE_CARLO_EPOCHS = {"dropout": 5.5, "bbb": 12.5}
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"


@dataclass
class GridSummary:
    """What a grid execution did."""

    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, Path, str]] = field(default_factory=list)
    busy: list[tuple[str, str]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Record one run's outcome."""
        if outcome.status == "failed":
            self.failed.append((outcome.run, Path(outcome.notebook), outcome.message))
        elif outcome.status == "busy":
            self.busy.append((outcome.run, outcome.message))
        else:
            getattr(self, outcome.status).append(outcome.run)

    @property
    def ok(self) -> bool:
        """Whether every run of the grid is finished."""
        return not self.failed and not self.busy

    def report(self) -> str:
        """Human-readable summary, failures with the notebook that holds the error."""
        lines = [f"{len(self.finished)} run(s) finished, {len(self.skipped)} already done, {len(self.failed)} failed"
                 + (f", {len(self.busy)} busy in another runner" if self.busy else "")]
        lines += [f"  FAILED {run}: {error} (see {notebook})" for run, notebook, error in self.failed]
        lines += [f"  BUSY {message}; run again once that runner has finished" for _, message in self.busy]
        return "\n".join(lines)


@dataclass(frozen=True)
class Outcome:
    """How one attempted run ended: finished, skipped (already done), failed or busy (locked elsewhere)."""

    run: str
    status: str
    message: str = ""
    notebook: str = ""


def is_finished(run_dir: Path, cfg: RunConfig) -> bool:
    """Whether run_dir holds a finished, undamaged run of exactly this configuration."""
    try:
        manifest = read_manifest(run_dir)
    except (FileNotFoundError, ResultsIntegrityError):
        return False
    return RunConfig.from_dict(manifest["config"]) == cfg  # fields newer than the run read as their defaults


def _prepare_partial(partial: Path, cfg: RunConfig) -> None:
    """Keep a partial folder whose checkpoint another configuration did not write (to resume), else start afresh.

    A damaged checkpoint stays: training sets it aside and says so.
    """
    try:
        stale = not RunConfig.from_dict(load_checkpoint(partial / CHECKPOINT)["config"]).trains_like(cfg)
    except (FileNotFoundError, CheckpointError):
        stale = False
    if stale:
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)


def trained_sibling(runs_dir: Path, cfg: RunConfig) -> Path | None:
    """The checkpoint of a finished run that trained exactly as cfg does (it differs only in the score that picks
    the kept epoch, or in its variant's name): cfg then needs no training of its own, only its pruning."""
    for manifest_path in sorted(Path(runs_dir).glob("*/manifest.json")):
        checkpoint = manifest_path.parent / CHECKPOINT
        try:
            other = RunConfig.from_dict(read_manifest(manifest_path.parent)["config"])
        except (ResultsIntegrityError, ValueError, KeyError):
            continue
        if other != cfg and other.trains_like(cfg) and checkpoint.exists():
            return checkpoint
    return None


def adopt_checkpoint(sibling: Path, cfg: RunConfig, target: Path) -> None:
    """A sibling's checkpoint as cfg's own: the same training, stored under cfg's configuration, so that the
    pruning step keeps the epoch cfg's score selects and labels its rows with cfg's variant."""
    state = load_checkpoint(sibling)
    state["config"] = cfg.to_dict()
    save_checkpoint(state, target)


def execute_run(cfg: RunConfig, profile: Profile, runs_dir: Path, data_dir: Path | None) -> Path:
    """Train and prune one run through its notebooks; return the finished folder."""
    paths = RunPaths.of(runs_dir, cfg)
    final, partial = paths.final, paths.partial
    _prepare_partial(partial, cfg)
    sibling = trained_sibling(runs_dir, cfg) if cfg.patience else None
    if sibling is not None and not (partial / CHECKPOINT).exists():
        adopt_checkpoint(sibling, cfg, partial / CHECKPOINT)  # trained once, kept at another epoch: pruning only
    else:
        sibling = None
    data = str(Path(data_dir).resolve()) if data_dir else ""
    seconds = {
        "train": execute_notebook("train", partial / "train.ipynb",
                          {"config": cfg.to_dict(), "run_dir": str(partial), "data_dir": data}),
        "prune": execute_notebook("prune", partial / "prune.ipynb",
                          {"run_dir": str(partial), "fractions": list(profile.fractions),
                           "include_bias": profile.include_bias, "finetune_epochs": profile.finetune_epochs,
                           "finetune_patience": profile.finetune_patience,
                           "finetune_rates": list(profile.finetune_rates),
                           "posthoc_fractions": list(profile.posthoc_fractions),
                           "data_dir": data, "device": cfg.device}),
    }
    device = str(resolve_device(cfg.device))
    write_manifest({
        "run": paths.name, "profile": profile.name, "config": cfg.to_dict(), "config_digest": cfg.digest(),
        "notebook_seconds": seconds,
        "train_seconds": 0.0 if sibling else float(pd.read_csv(partial / "history.csv")["seconds"].sum()),
        **{f"prune_{key}": json.loads((partial / "prune.json").read_text()).get(key, {})
           for key in ("seconds_by_part", "seconds_by_network")},
        **({"trained_in": sibling.parent.name} if sibling else {}),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **environment(device),
        "step_launch": graphs.step_launch(torch.device(device)),
        **({"bbb_sampler": native.sampler_name(device)} if cfg.bayesian else {}),
    }, partial)
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return final


def attempt_run(cfg: RunConfig, profile: Profile, runs_dir: Path, data_dir: Path | None) -> Outcome:
    """Execute one run under its lock; never raises for a failing run (the grid goes on)."""
    paths = RunPaths.of(runs_dir, cfg)
    name = paths.name
    try:
        with run_lock(paths.lock, name):
            if is_finished(paths.final, cfg):  # finished by another runner meanwhile
                return Outcome(name, "skipped")
            execute_run(cfg, profile, runs_dir, data_dir)
            return Outcome(name, "finished")
    except RunBusy as busy:
        return Outcome(name, "busy", str(busy))
    except Exception as error:  # noqa: BLE001 - a failed run must not stop the grid
        notebook = max(paths.partial.glob("*.ipynb"), key=lambda p: p.stat().st_mtime, default=paths.partial)
        message = f"{error.ename}: {error.evalue}" if hasattr(error, "ename") else f"{type(error).__name__}: {error}"
        return Outcome(name, "failed", message, str(notebook))


def finetune_epochs_of(profile: Profile) -> int:
    """Epochs of fine-tuning each run's pruning sweep adds (at most): both schedules at every rate and nonzero
    fraction."""
    return len(SCHEDULES) * len(profile.finetune_rates) * sum(f > 0 for f in profile.fractions) * profile.finetune_epochs


def expected_cost(cfg: RunConfig, finetune_epochs: int = 0) -> float:
    """A run's expected share of a grid's time, in arbitrary units: SGD epochs (training and fine-tuning at the
    method's step cost, then scoring) x training images x weights."""
    sizes = (28 * 28, *cfg.hidden, 10)
    weights = sum(fan_in * fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
    images = cfg.train_subset or 60_000
    step = STEP_COST.get(cfg.method, 1.0)
    monte_carlo = MONTE_CARLO_EPOCHS["bbb" if cfg.bayesian else "dropout"] if cfg.bayesian or cfg.dropout else 0.0
    return ((cfg.train_epochs + finetune_epochs) * step + NOTEBOOK_EPOCHS + monte_carlo) * images * weights


class DirtyTreeError(ValueError):
    """A reference profile asked to train from code that differs from its commit."""


def check_clean(profile: Profile, allow_dirty: bool = False) -> None:
    """Refuse to train a reference profile from a working tree whose code differs from its commit."""
    version = code_version()
    if profile.reference and version.endswith("-dirty") and not allow_dirty:
        raise DirtyTreeError(
            f"profile {profile.name!r} is a reference profile and the code differs from its commit ({version}): "
            "commit (or stash) the change first, so every run records the commit that produced it, "
            "or pass --allow-dirty to train anyway (the manifests then record the -dirty version)")


def run_grid(
    profile: Profile,
    results_root: Path,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
    seeds: list[int] | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
    protocols: list[str] | None = None,
    executor: Executor | None = None,
    allow_dirty: bool = False,
    variants: list[str] | None = None,
) -> GridSummary:
    """Execute every run of a profile that is not already finished, the longest first; failures do not stop the
    grid. A reference profile trains only from a clean tree (`check_clean`). Then the profile's deep ensembles whose
    members have all finished are scored (`pipeline.ensembles`)."""
    configs = profile.runs(datasets, methods, seeds, protocols, variants=variants)
    runs_dir = (Path(results_root) / profile.name / "runs").resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    summary = GridSummary()
    pending = []
    for cfg in configs:
        paths = RunPaths.of(runs_dir, cfg)
        if is_finished(paths.final, cfg):
            summary.skipped.append(paths.name)
        else:
            pending.append(cfg)
    if pending:
        check_clean(profile, allow_dirty)
    executor = executor or LocalExecutor()
    # the longest runs first, so that the last to finish is a short one and no slot idles long at the end
    pending.sort(key=lambda cfg: -expected_cost(cfg, finetune_epochs_of(profile)))
    costs = {RunPaths.of(runs_dir, cfg).name: expected_cost(cfg, finetune_epochs_of(profile)) for cfg in pending}
    unfinished = list(costs)  # in submission order: the first `slots` of them are the ones in progress
    slots = getattr(executor, "jobs", 1)
    total = sum(costs.values())
    bar = tqdm(total=total or 1.0, initial=0.0 if total else 1.0, disable=not progress, desc=f"profile {profile.name}",
               bar_format=BAR_FORMAT)

    def show() -> None:
        """Runs done out of the grid's, and the ones in progress."""
        done = len(configs) - len(unfinished)
        running = ", ".join(unfinished[:slots])
        bar.set_postfix_str(f"{done}/{len(configs)} runs" + (f", running {running}" if running else ""), refresh=False)

    show()
    bar.refresh()
    for outcome in executor.map(attempt_run, pending, profile, runs_dir, data_dir):
        summary.add(outcome)
        unfinished.remove(outcome.run)
        bar.update(costs[outcome.run])
        show()
    bar.close()
    if profile.ensembles:
        write_ensembles(profile, runs_dir, data_dir,
                        restore=lambda cfg, folder: restore_checkpoint(cfg, profile, folder, data_dir, progress))
    return summary


class CheckpointNotReproduced(RuntimeError):
    """A finished run retrained for its lost checkpoint did not reproduce its recorded history and pruning."""


REPRODUCED = {"history": ["seconds"], "pruning": []}  # the tables a retrained run must equal, less their timings


def same_history(folder: Path, other: Path) -> bool:
    """Whether two finished runs recorded the same training, epoch by epoch (their timings and variants aside)."""
    recorded, again = (pd.read_csv(f / "history.csv").drop(columns=["seconds", "variant"], errors="ignore")
                       for f in (folder, other))
    return recorded.equals(again)


def restore_checkpoint(cfg: RunConfig, profile: Profile, folder: Path, data_dir: Path | None = None,
                       progress: bool = True) -> None:
    """Give a finished run whose checkpoint is gone (checkpoints are never committed) its checkpoint back: a
    sibling's where one recorded the same training and still has its checkpoint (`trained_sibling`), else retrain it
    in a scratch folder, check that its history and pruning tables equal the recorded ones, and put the retrained
    checkpoint beside them; the recorded run is not touched otherwise."""
    sibling = trained_sibling(folder.parent, cfg)
    if sibling is not None and same_history(folder, sibling.parent):
        if progress:
            print(f"restoring the checkpoint of {folder.name} from {sibling.parent.name}, which recorded its training")
        adopt_checkpoint(sibling, cfg, folder / CHECKPOINT)
        return
    if progress:
        print(f"restoring the checkpoint of {folder.name}: retraining it and checking it against its record")
    with tempfile.TemporaryDirectory(prefix="bayesprune-restore-") as scratch:
        outcome = attempt_run(cfg, profile, Path(scratch), data_dir)
        retrained = RunPaths.of(Path(scratch), cfg).final
        if outcome.status != "finished":
            raise CheckpointNotReproduced(f"retraining {folder.name} ended {outcome.status}: {outcome.message}")
        for table, timings in REPRODUCED.items():
            recorded, again = (pd.read_csv(f / f"{table}.csv").drop(columns=timings) for f in (folder, retrained))
            if not recorded.equals(again):
                raise CheckpointNotReproduced(f"{folder.name} retrained to a different {table}.csv than the one "
                                              "recorded; its ensemble is not scored from a network other than the run")
        shutil.copy2(retrained / CHECKPOINT, folder / CHECKPOINT)
