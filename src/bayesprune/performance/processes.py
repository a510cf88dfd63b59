"""The bench's SGD step timed in fresh processes under several thread settings, in turns: does every process run at
one speed? Each process loads MNIST, builds the step and times it (`bench.time_in_turns`); the settings are
environment variables (threads, huge pages, threads bound to cores), interleaved round by round so that a drift of
the machine reaches all alike. Run it with nothing else on the machine (`make processes`); the compute chapter shows
every report it wrote."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bayesprune.host import cpu_name


def settings(cores: int) -> dict[str, dict[str, str]]:
    """The thread settings compared: one thread (how the grids train, one process per core), and every core's
    thread as PyTorch starts by default, alone, with huge pages, and bound to the cores."""
    every = {"OMP_NUM_THREADS": str(cores)}
    return {
        "1 thread": {"OMP_NUM_THREADS": "1"},
        f"{cores} threads": every,
        f"{cores} threads with huge pages": {**every, "THP_MEM_ALLOC_ENABLE": "1"},
        f"{cores} threads bound to cores": {**every, "OMP_PROC_BIND": "true", "OMP_PLACES": "cores"},
    }


def time_this_process(steps: int, repeats: int, data_root: Path | None) -> dict[str, Any]:
    """The SGD step's median milliseconds in this process, and each repeat's."""
    import torch

    from bayesprune.data.datasets import load_split
    from bayesprune.performance.bench import MODELS, time_in_turns

    cpu = torch.device("cpu")
    x, y = load_split("mnist", True, data_root, cpu)
    seconds = time_in_turns({"sgd": MODELS["sgd"].build("cpu", x, y)}, steps, repeats, 5, cpu)["sgd"]
    return {"step_ms": 1e3 * statistics.median(seconds), "repeat_ms": [1e3 * s for s in seconds],
            "threads": torch.get_num_threads()}


def time_fresh_processes(named: dict[str, dict[str, str]], rounds: int, steps: int, repeats: int,
                         data_root: Path | None = None) -> dict[str, Any]:
    """Per round, one fresh process per setting in turn, each timing the SGD step; the report of every process."""
    if rounds < 1 or steps < 1 or repeats < 1:
        raise ValueError(f"rounds, steps and repeats must be >= 1, got {rounds}, {steps}, {repeats}")
    load = os.getloadavg()[0]
    command = [sys.executable, "-m", "bayesprune.performance.processes", "--this-process", "--steps", str(steps),
               "--repeats", str(repeats), *(["--data-dir", str(data_root)] if data_root else [])]
    runs = []
    for round_ in range(1, rounds + 1):
        for name, env in named.items():
            done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"the process timed with {name} failed (exit {done.returncode}):\n"
                                   f"{done.stderr[-2000:]}")
            runs.append({"setting": name, "round": round_, **json.loads(done.stdout.strip().splitlines()[-1])})
    return {"machine": f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores", "load_before": load,
            "method": f"per round one fresh process per setting in turn; each the median of {repeats} repeats of "
                      f"{steps} steps after 5 warm-up steps", "runs": runs}


def main(argv: list[str] | None = None) -> int:
    """Time the SGD step in fresh processes under each thread setting and write the report as JSON."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="fresh processes per setting (default: 4)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per repeat (default: 50)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per process (default: 7)")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the MNIST files (default: the cache)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the report")
    parser.add_argument("--this-process", action="store_true", help="time this process only and print it as JSON")
    args = parser.parse_args(argv)
    if args.this_process:
        print(json.dumps(time_this_process(args.steps, args.repeats, args.data_dir)))
        return 0
    if args.json is None:
        parser.error("--json is required unless --this-process is given")
    report = time_fresh_processes(settings(len(os.sched_getaffinity(0))), args.rounds, args.steps, args.repeats,
                                  args.data_dir)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    for run in report["runs"]:
        print(f"round {run['round']}, {run['setting']}: {run['step_ms']:.2f} ms a step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
