"""Command line: `bayesprune data fetch | train | run | recheck | book | pdf | bench | latency | time-training`."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
from dataclasses import MISSING, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from bayesprune.config import (DATASETS, DEVIATIONS, DEVICES, KL_WEIGHTINGS, LR_SCHEDULES, METHOD_CHOICES, OPTIMIZERS,
                               PRIORS, PROTOCOLS, SELECTIONS, TARGET_RULES, RunConfig, check_choice)
from bayesprune.data.datasets import DataIntegrityError, data_root, fetch
from bayesprune.pipeline.executors import MissingExtra
from bayesprune.pipeline.manifest import ResultsIntegrityError
from bayesprune.pipeline.recheck import RecheckFailed
from bayesprune.training.checkpoint import CheckpointError


# Config fields whose values are a closed set: the flag lists them and rejects anything else with the list.
CONFIG_CHOICES = {"dataset": DATASETS, "protocol": PROTOCOLS, "optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES,
                  "prior": PRIORS, "select": SELECTIONS + TARGET_RULES, "kl_weighting": KL_WEIGHTINGS,
                  "device": DEVICES, "deviations": tuple(DEVIATIONS)}
EXECUTORS = ("local", "ray")
BENCH_MODELS = ("sgd", "dropout0.5", "bbb", "bbb-torch", "bbb-plain", "bbb-study", "blitz", "sgd-2x1200", "bbb-2x1200")


def closed(name: str, values: tuple[str, ...]) -> dict[str, Any]:
    """argparse options for a flag whose values are a closed set: the set shown in the usage, and a value outside it
    rejected with the project's one message ("unknown dataset 'x'; valid choices: ...")."""
    def check(value: str) -> str:
        try:
            check_choice(name, value, values)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return value

    return {"type": check, "metavar": "{" + ",".join(values) + "}"}


def field_help() -> dict[str, str]:
    """Each RunConfig field's help: the comment beside it in the class, where the settings are documented once."""
    found: dict[str, str] = {}
    for line in inspect.getsource(RunConfig).splitlines():
        match = re.match(r"\s+(\w+): [^=]+=[^#]*#\s*(.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One --option per RunConfig field, defaulting to the field's default, its help the field's comment."""
    helps = field_help()
    for field in fields(RunConfig):
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not MISSING else None
        options = {"help": helps.get(field.name, field.name.replace("_", " ")),
                   **(closed(field.name, CONFIG_CHOICES[field.name]) if field.name in CONFIG_CHOICES else {})}
        if field.name == "method":
            options["help"] = f"the method: {METHOD_CHOICES}"
        if field.name == "hidden":
            parser.add_argument(flag, type=int, nargs="+", default=list(default), **options)
        elif field.name == "init_rho":
            parser.add_argument(flag, type=float, nargs=2, default=list(default), metavar=("LOW", "HIGH"), **options)
        elif field.name == "deviations":
            parser.add_argument(flag, nargs="*", default=[], **{**options, "help": "the study's code paths to switch on"})
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=options["help"])
        else:
            parser.add_argument(flag, **{"type": type(default), **options}, default=default)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each flag's default where its text does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        """The flag's help, with '(default: X)' where a default exists and the text names none."""
        text = action.help or ""
        quiet = action.default in (None, argparse.SUPPRESS, False) or not action.option_strings
        return text if quiet or "default" in text else f"{text} (default: %(default)s)"


def _command(commands: argparse._SubParsersAction, name: str, text: str, data: bool = False) -> argparse.ArgumentParser:
    """A sub-command whose help shows defaults; with data, it takes --data-dir where it reads the images."""
    parser = commands.add_parser(name, help=text, description=text, formatter_class=_Formatter)
    if data:
        parser.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                            help="folder of the MNIST / Fashion-MNIST files (default: $BAYESPRUNE_DATA, else "
                                 "~/.cache/bayesprune)")
    return parser


def _parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="bayesprune", description=__doc__, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder of the data files, for every sub-command (default: $BAYESPRUNE_DATA, else "
                             "~/.cache/bayesprune)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = _command(commands, "data", "fetch and verify MNIST / Fashion-MNIST")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data_fetch = _command(data_commands, "fetch", "fetch every file and check its SHA-256", data=True)
    data_fetch.add_argument("--datasets", nargs="+", default=list(DATASETS), **closed("dataset", DATASETS), help="datasets to fetch")

    train = _command(commands, "train", "train one model, print its per-epoch history", data=True)
    _add_config_options(train)
    train.add_argument("--out", type=Path, default=None, help="checkpoint directory (resumes if present)")

    run = _command(commands, "run", "execute a profile's grid of runs through the notebooks", data=True)
    run.add_argument("--profile", default=None, help="profile in profiles.yml (default: paper with CUDA, quick without)")
    run.add_argument("--datasets", nargs="+", default=None, **closed("dataset", DATASETS), help="only these datasets of the grid")
    run.add_argument("--methods", nargs="+", default=None, help="only these methods of the grid")
    run.add_argument("--seeds", nargs="+", type=int, default=None, help="only these seeds of the grid")
    run.add_argument("--protocols", nargs="+", default=None, **closed("protocol", PROTOCOLS), help="only these protocols")
    run.add_argument("--variants", nargs="+", default=None,
                     help="only these variants of the grid (a profile's named rules, e.g. for98)")
    run.add_argument("--results", type=Path, default=Path("results"), help="results root")
    run.add_argument("--executor", default="local", **closed("executor", EXECUTORS), help="where the runs execute")
    run.add_argument("--allow-dirty", action="store_true",
                     help="train a reference profile even though the code differs from its commit")
    run.add_argument("--jobs", type=int, default=None,
                     help="local executor: runs at once, each in its own process (default: one per GPU, else per core)")
    run.add_argument("--address", default=None, help="ray executor: join the cluster at ADDR (default: start one)")
    run.add_argument("--cpus-per-run", type=float, default=1.0, help="ray executor: CPUs reserved per run")
    run.add_argument("--gpus-per-run", type=float, default=None,
                     help="ray executor: GPUs per run (default: 1 if the cluster has GPUs, else 0)")

    bench = _command(commands, "bench", "time one training epoch of each model on this machine", data=True)
    bench.add_argument("--models", nargs="+", default=list(BENCH_MODELS), **closed("model", BENCH_MODELS), help="models to time")
    bench.add_argument("--steps", type=int, default=50, help="timed steps per repeat")
    bench.add_argument("--repeats", type=int, default=5, help="timed repeats (the median is kept)")
    bench.add_argument("--device", default="auto", **closed("device", DEVICES), help="where to time")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads per process (default: PyTorch's own, one per core; the grids train with 1)")
    bench.add_argument("--wait-idle", action="store_true",
                       help="first wait (at most 5 minutes) until the machine's load says it is idle")
    bench.add_argument("--json", type=Path, default=None, help="also write the report here as JSON")

    latency = _command(commands, "latency", "time dense, CSR and unit-pruned inference of an MLP on this CPU, per "
                       "sparsity")
    latency.add_argument("--hidden", nargs="+", type=int, default=[300, 100], help="hidden widths (784-...-10)")
    latency.add_argument("--repeats", type=int, default=50, help="timed forward passes per point (median kept)")
    latency.add_argument("--runs", type=Path, default=None,
                         help="instead of a sparsity grid, time each BC-GNJ run's network as trained in this results folder")
    latency.add_argument("--csv", type=Path, default=None, help="also write the table here")

    timing = _command(commands, "time-training", "train a profile's grid side by side and time it (no notebooks, no "
                      "pruning)", data=True)
    timing.add_argument("--profile", default="paper", help="profile in profiles.yml")
    timing.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of the grid to train")
    timing.add_argument("--protocols", nargs="+", default=["corrected"], **closed("protocol", PROTOCOLS), help="protocols to train")
    timing.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    timing.add_argument("--device", default="auto", **closed("device", DEVICES), help="where to train")
    timing.add_argument("--json", type=Path, default=None, help="also write the report here as JSON")

    recheck = _command(commands, "recheck", "retrain one finished run and compare it with its recorded accuracies",
                       data=True)
    recheck.add_argument("run", help="run folder name, e.g. mnist-sgd-corrected-s0")
    recheck.add_argument("--profile", default="paper", help="profile in profiles.yml")
    recheck.add_argument("--results", type=Path, default=Path("results"), help="results root")
    recheck.add_argument("--scratch", type=Path, default=None, help="where to retrain (default: a new temporary folder)")

    book = _command(commands, "book", "execute the book's result chapters on a profile's results and build the HTML")
    book.add_argument("--profile", default=None, help="profile whose results the chapters read (default as for run)")
    book.add_argument("--results", type=Path, default=Path("results"), help="results root")

    pdf = _command(commands, "pdf", "print the built book to one PDF (headless Chromium)")
    pdf.add_argument("--html", type=Path, default=Path("book/_build/html"), help="the built book")
    pdf.add_argument("--out", type=Path, default=Path("book/_build/report.pdf"), help="where the PDF goes")
    return parser


def package_version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("bayesprune")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _run_grid(args: argparse.Namespace) -> int:
    """Execute a profile's grid and print the summary; non-zero unless every run is finished."""
    from bayesprune.pipeline.executors import make_executor
    from bayesprune.pipeline.profiles import get_profile
    from bayesprune.pipeline.runner import run_grid

    profile = get_profile(args.profile)
    executor = make_executor(args.executor, args.jobs, args.address, args.cpus_per_run, args.gpus_per_run)
    print(f"profile {profile.name}: {profile.description}")
    summary = run_grid(profile, args.results, args.datasets, args.methods, args.seeds, args.data_dir,
                       protocols=args.protocols, executor=executor, allow_dirty=args.allow_dirty,
                       variants=args.variants)
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
    import torch

    from bayesprune.performance.bench import format_report, run_bench, wait_until_idle

    models = list(args.models)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.wait_idle:
        print(f"waiting for an idle machine: load {wait_until_idle(os.cpu_count() or 1):.2f}")
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
