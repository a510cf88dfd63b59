"""Command line: `bayesprune data fetch | train | run | recheck | book | pdf | bench | latency | time-training`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from bayesprune.config import DATASETS, RunConfig
from bayesprune.data.datasets import DataIntegrityError, data_root, fetch
from bayesprune.pipeline.executors import MissingExtra
from bayesprune.pipeline.manifest import ResultsIntegrityError
from bayesprune.pipeline.recheck import RecheckFailed
from bayesprune.training.checkpoint import CheckpointError


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One --option per RunConfig field, defaulting to the field's default."""
    for field in fields(RunConfig):
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not MISSING else None
        if field.name == "hidden":
            parser.add_argument(flag, type=int, nargs="+", default=list(default))
        elif field.name == "init_rho":
            parser.add_argument(flag, type=float, nargs=2, default=list(default), metavar=("LOW", "HIGH"))
        elif field.name == "deviations":
            parser.add_argument(flag, nargs="*", default=[], help="the study's code paths to switch on")
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)


def _parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="bayesprune", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $BAYESPRUNE_DATA)")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="fetch and verify MNIST / Fashion-MNIST")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    data_fetch = data_commands.add_parser("fetch", help="fetch every file and check its SHA-256")
    data_fetch.add_argument("--datasets", nargs="+", default=list(DATASETS))

    train = commands.add_parser("train", help="train one model, print its per-epoch history")
    _add_config_options(train)
    train.add_argument("--out", type=Path, default=None, help="checkpoint directory (resumes if present)")

    run = commands.add_parser("run", help="execute a profile's grid of runs through the notebooks")
    run.add_argument("--profile", default=None, help="profile in profiles.yml (default: paper with CUDA, quick without)")
    run.add_argument("--datasets", nargs="+", default=None)
    run.add_argument("--methods", nargs="+", default=None)
    run.add_argument("--seeds", nargs="+", type=int, default=None)
    run.add_argument("--protocols", nargs="+", default=None)
    run.add_argument("--results", type=Path, default=Path("results"), help="results root (default: results)")
    run.add_argument("--executor", default="local", help="local (default) or ray")
    run.add_argument("--allow-dirty", action="store_true",
                     help="train a reference profile even though the code differs from its commit")
    run.add_argument("--jobs", type=int, default=None,
                     help="local executor: runs at once, each in its own process (default: one per GPU, else per core)")
    run.add_argument("--address", default=None, help="ray executor: join the cluster at ADDR (default: start one)")
    run.add_argument("--cpus-per-run", type=float, default=1.0, help="ray executor: CPUs reserved per run")
    run.add_argument("--gpus-per-run", type=float, default=None,
                     help="ray executor: GPUs per run (default: 1 if the cluster has GPUs, else 0)")

    bench = commands.add_parser("bench", help="time one training epoch of each model on this machine")
    bench.add_argument("--models", nargs="+",
                       default=["sgd", "dropout0.5", "bbb", "bbb-torch", "bbb-plain", "bbb-study", "blitz", "sgd-2x1200",
                                "bbb-2x1200"])
    bench.add_argument("--steps", type=int, default=50, help="timed steps per repeat")
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--device", default="auto")
    bench.add_argument("--json", type=Path, default=None, help="also write the report here as JSON")

    latency = commands.add_parser("latency", help="time dense, CSR and unit-pruned inference of an MLP on this CPU, per sparsity")
    latency.add_argument("--hidden", nargs="+", type=int, default=[300, 100], help="hidden widths (784-...-10)")
    latency.add_argument("--repeats", type=int, default=50, help="timed forward passes per point (median kept)")
    latency.add_argument("--runs", type=Path, default=None,
                         help="instead of a sparsity grid, time each BC-GNJ run's network as trained in this results folder")
    latency.add_argument("--csv", type=Path, default=None, help="also write the table here")

    timing = commands.add_parser("time-training", help="train a profile's grid side by side and time it (no notebooks, no pruning)")
    timing.add_argument("--profile", default="paper")
    timing.add_argument("--seeds", nargs="+", type=int, default=[0])
    timing.add_argument("--protocols", nargs="+", default=["corrected"])
    timing.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    timing.add_argument("--device", default="auto")
    timing.add_argument("--json", type=Path, default=None, help="also write the report here as JSON")

    recheck = commands.add_parser("recheck", help="retrain one finished run and compare it with its recorded accuracies")
    recheck.add_argument("run", help="run folder name, e.g. mnist-sgd-corrected-s0")
    recheck.add_argument("--profile", default="paper")
    recheck.add_argument("--results", type=Path, default=Path("results"))
    recheck.add_argument("--scratch", type=Path, default=None, help="where to retrain (default: a new temporary folder)")
    book = commands.add_parser("book", help="execute the book's result chapters on a profile's results and build the HTML")
    book.add_argument("--profile", default=None)
    book.add_argument("--results", type=Path, default=Path("results"))

    pdf = commands.add_parser("pdf", help="print the built book to one PDF (headless Chromium)")
    pdf.add_argument("--html", type=Path, default=Path("book/_build/html"))
    pdf.add_argument("--out", type=Path, default=Path("book/_build/report.pdf"))
    return parser


def _run_grid(args: argparse.Namespace) -> int:
    """Execute a profile's grid and print the summary; non-zero unless every run is finished."""
    from bayesprune.pipeline.executors import make_executor
    from bayesprune.pipeline.profiles import get_profile
    from bayesprune.pipeline.runner import run_grid

    profile = get_profile(args.profile)
    executor = make_executor(args.executor, args.jobs, args.address, args.cpus_per_run, args.gpus_per_run)
    print(f"profile {profile.name}: {profile.description}")
    summary = run_grid(profile, args.results, args.datasets, args.methods, args.seeds, args.data_dir,
                       protocols=args.protocols, executor=executor, allow_dirty=args.allow_dirty)
    print(summary.report())
    return 0 if summary.ok else 1


def _print_and_save(text: str, report: dict, path: Path | None) -> None:
    """Print a report's text and, where a path is given, write the report there as JSON."""
    from bayesprune.pipeline.results import write_json

    print(text)
    if path:
        write_json(report, path)
        print(f"wrote {path}")


def _bench(args: argparse.Namespace) -> int:
    """Time every model and print (and optionally save) the report."""
    from bayesprune.performance.bench import format_report, run_bench

    models = list(args.models)
    if "blitz" in models:
        try:
            import blitz  # noqa: F401
        except ImportError:
            print("blitz-bayesian-pytorch is not installed (pip install -e .[bench]); timing without it")
            models.remove("blitz")
    report = run_bench(models, args.steps, args.repeats, device=args.device, data_root=args.data_dir)
    _print_and_save(format_report(report), report, args.json)
    return 0


def _latency(args: argparse.Namespace) -> int:
    """Time dense, CSR and unit-pruned (smaller dense) inference per batch size, per sparsity or per BC-GNJ run as
    trained; print (and optionally save) the table."""
    import pandas as pd
    import torch

    from bayesprune.host import cpu_name
    from bayesprune.model.models import CLASSES, INPUT_SIZE
    from bayesprune.performance.compression import latency_rows, unit_pruned_latency

    if args.repeats < 1 or not args.hidden or min(args.hidden) < 1:
        raise ValueError("--repeats and every --hidden width must be >= 1")
    if args.runs is not None:
        rows = unit_pruned_latency(args.runs, repeats=args.repeats)
    else:
        sizes = (INPUT_SIZE, *args.hidden, CLASSES)
        rows = [{"network": "-".join(map(str, sizes)), **row} for row in latency_rows(sizes, repeats=args.repeats)]
    table = pd.DataFrame([{"machine": cpu_name(), "threads": torch.get_num_threads(), **row} for row in rows])
    print(table.drop(columns=["machine"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.csv:
        from bayesprune.pipeline.results import write_text_atomic

        args.csv.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.csv, table.to_csv(index=False))
        print(f"wrote {args.csv}")
    return 0


def _time_training(args: argparse.Namespace) -> int:
    """Train a profile's grid side by side and print (and optionally save) what each run took."""
    from bayesprune.performance.gridtime import format_training_report, time_profile_training
    from bayesprune.pipeline.profiles import get_profile

    report = time_profile_training(get_profile(args.profile), args.seeds, args.protocols, args.jobs, args.device,
                                   args.data_dir)
    _print_and_save(format_training_report(report), report, args.json)
    return 0


def _recheck(args: argparse.Namespace) -> int:
    """Retrain one run and print recorded against re-run accuracy; non-zero if any differ beyond 2 seed std."""
    from bayesprune.pipeline.profiles import get_profile
    from bayesprune.pipeline.recheck import recheck

    profile = get_profile(args.profile)
    table, seconds = recheck(profile, args.results / profile.name, args.run, args.scratch, args.data_dir)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"re-ran {args.run} in {seconds:.0f} s; {int(table['within'].sum())} of {len(table)} rows within 2 seed std")
    return 0 if table["within"].all() else 1


def _book(args: argparse.Namespace) -> int:
    """Build a profile's book and print where its HTML is."""
    from bayesprune.pipeline.profiles import get_profile
    from bayesprune.report.chapters import build_book

    index = build_book(get_profile(args.profile), args.results)
    print(f"HTML: {index.relative_to(Path.cwd()) if index.is_relative_to(Path.cwd()) else index}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bayesprune` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "data":
            print(f"data directory: {data_root(args.data_dir)}")
            for dataset in args.datasets:
                fetch(dataset, args.data_dir)
            return 0
        if args.command == "run":
            return _run_grid(args)
        if args.command == "book":
            return _book(args)
        if args.command == "pdf":
            from bayesprune.report.chapters import BOOK
            from bayesprune.report.pdf import print_book

            print(f"PDF: {print_book(args.html, BOOK / '_toc.yml', args.out)}")
            return 0
        if args.command == "recheck":
            return _recheck(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "time-training":
            return _time_training(args)
        if args.command == "latency":
            return _latency(args)
        from bayesprune.training.train import train

        values = {f.name: getattr(args, f.name) for f in fields(RunConfig)}
        result = train(RunConfig.from_dict(values), out_dir=args.out, data_root=args.data_dir)
        for record in result.history:
            print(json.dumps(record))
        return 0
    except (ValueError, DataIntegrityError, FileNotFoundError, MissingExtra, ResultsIntegrityError, CheckpointError,
            FloatingPointError, RecheckFailed, subprocess.CalledProcessError) as error:
        print(f"bayesprune: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
