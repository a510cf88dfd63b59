"""`make report` as a newcomer meets it, timed stage by stage: a fresh clone of a commit, no virtual environment,
no data and no pip cache, then `make setup`, `make data`, `make run` and `make book` in turn. Run it with nothing
else on the machine (`make time-report`); the compute chapter shows every report it wrote, and what each run the
clone trained spent on training and on scoring (its manifest's timings, kept in the report)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bayesprune.host import cpu_name

STAGES = ("setup", "data", "run", "book")  # `make report` is data, run and book, each after setup


def time_stages(clone: Path, env: dict[str, str], stages: tuple[str, ...] = STAGES) -> dict[str, float]:
    """Seconds each `make <stage>` took in a clone, in turn; a stage that fails stops the timing with its output."""
    seconds = {}
    for stage in stages:
        started = time.perf_counter()
        done = subprocess.run(["make", stage], cwd=clone, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise RuntimeError(f"`make {stage}` failed in {clone} (exit {done.returncode}); its output is above")
        seconds[stage] = time.perf_counter() - started
    return seconds


MANIFEST_TIMINGS = ("config", "train_seconds", "notebook_seconds", "prune_seconds_by_part")


def trained_runs(clone: Path) -> list[dict[str, Any]]:
    """The timings of every run the clone trained (its untracked results, ignored ones included; not the committed
    ones): each manifest's config, training seconds and scoring seconds by part."""
    listed = subprocess.run(["git", "ls-files", "--others", "results"], cwd=clone,
                            check=True, capture_output=True, text=True).stdout.split()
    return [{key: manifest[key] for key in MANIFEST_TIMINGS if key in manifest}
            for manifest in (json.loads((clone / path).read_text()) for path in sorted(listed)
                             if path.endswith("/manifest.json"))]


def time_report(repository: Path, commit: str = "HEAD") -> dict[str, Any]:
    """Clone `repository` at `commit` into a new temporary folder and time `make report` there from nothing: its
    own data folder, pip without a cache."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bayesprune-report-") as scratch:
        clone, data = Path(scratch) / "clone", Path(scratch) / "data"
        subprocess.run(["git", "clone", "-q", str(repository), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", commit], cwd=clone, check=True)
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, check=True, capture_output=True,
                                  text=True).stdout.strip()
        env = {**os.environ, "BAYESPRUNE_DATA": str(data), "PIP_NO_CACHE_DIR": "1"}
        env.pop("VIRTUAL_ENV", None)
        seconds = time_stages(clone, env)
        runs = trained_runs(clone)
    return {"machine": f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores", "commit": revision,
            "load_before": load, "stages": seconds, "total_seconds": sum(seconds.values()), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    """Time `make report` from a fresh clone of this repository and write the report as JSON."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--repository", type=Path, default=Path.cwd(), help="the git repository to clone")
    parser.add_argument("--commit", default="HEAD", help="the commit to time")
    parser.add_argument("--json", type=Path, required=True, help="where to write the report")
    args = parser.parse_args(argv)
    report = time_report(args.repository, args.commit)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(", ".join(f"{stage} {seconds / 60:.1f} min" for stage, seconds in report["stages"].items())
          + f"; make report {report['total_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
