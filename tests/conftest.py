"""Shared fixtures: the real datasets (fetched by `make data`) and a small training config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bayesprune.config import RunConfig
from bayesprune.data.datasets import FILES, SHA256, data_root, raw_dir, sha256_of

SANITIZERS = Path(__file__).with_name("nbval_sanitize.cfg")


def pytest_configure(config: pytest.Config) -> None:
    """`pytest --nbval` with no paths checks every notebook (a run's two, then the chapters in book order)
    against its stored outputs, with the project's sanitizers, instead of the unit tests."""
    if not config.getoption("nbval", False) or config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return
    from bayesprune.report.chapters import nbval_notebooks

    config.args = [str(path) for path in nbval_notebooks()]
    config.option.nbval_sanitize_with = config.option.nbval_sanitize_with or str(SANITIZERS)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under nbval, the smoke results the notebooks read by default are made first (finished runs are kept)."""
    if session.config.getoption("nbval", False):
        from bayesprune.pipeline.profiles import PROJECT_ROOT, get_profile
        from bayesprune.pipeline.runner import run_grid

        summary = run_grid(get_profile("smoke"), PROJECT_ROOT / "results")
        if not summary.ok:
            pytest.exit(f"the smoke grid the notebooks read failed:\n{summary.report()}", returncode=1)


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """The data directory holding verified MNIST and Fashion-MNIST; fails loudly if absent."""
    root = data_root()
    for dataset in SHA256:
        for name in FILES:
            path = raw_dir(dataset, root) / name
            if not path.exists():
                pytest.fail(f"{path} is missing: run `make data` first")
    return root


@pytest.fixture
def mnist_copy(real_data_root: Path, tmp_path: Path) -> Path:
    """A private copy of the MNIST raw files that a test may damage."""
    target = raw_dir("mnist", tmp_path)
    target.mkdir(parents=True)
    for name in FILES:
        shutil.copy(raw_dir("mnist", real_data_root) / name, target / name)
    assert sha256_of(target / FILES[1]) == SHA256["mnist"][FILES[1]]
    return tmp_path


def small_config(**overrides) -> RunConfig:
    """A run that takes a second or two: a 2000-image subset, a small network, a few epochs."""
    values = dict(dataset="mnist", method="sgd", epochs=3, lr=1e-3, hidden=(64, 64),
                  train_subset=2000, test_subset=1000, device="cpu")
    values.update(overrides)
    return RunConfig(**values)


RECORD_ENV = "BAYESPRUNE_RELIABILITY_RECORD"  # set by `make reliability-record`; unset, no test writes a tracked file


@pytest.fixture(scope="session")
def _reliability_rows():
    """Scenarios verified in this session, merged at the end into the record $BAYESPRUNE_RELIABILITY_RECORD names."""
    rows: dict[str, dict] = {}
    yield rows
    target = os.environ.get(RECORD_ENV)
    if rows and target:
        import json
        import platform
        from datetime import datetime, timezone

        from bayesprune.atomic import atomic_write

        record_path = Path(target)
        previous = json.loads(record_path.read_text())["scenarios"] if record_path.exists() else []
        merged = {row["scenario"]: row for row in previous} | rows
        data = {"written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "platform": platform.platform(), "scenarios": sorted(merged.values(), key=lambda r: (r["order"], r["scenario"]))}
        with atomic_write(record_path) as tmp:
            tmp.write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture
def record(_reliability_rows, request):
    """record(scenario, entry point, what happened): called by a reliability test after its checks pass."""
    def add(scenario: str, entry: str, outcome: str) -> None:
        first_line = outcome.strip().splitlines()[0] if outcome.strip() else outcome
        _reliability_rows[scenario] = {"order": SCENARIO_ORDER.index(scenario) if scenario in SCENARIO_ORDER else 99,
                                       "scenario": scenario, "entry point": entry, "what happened": first_line,
                                       "test": request.node.nodeid.split("::")[-1]}
    return add


SCENARIO_ORDER = [
    "runner killed (kill -9) mid-grid",
    "Ray worker killed (kill -9) mid-run",
    "two runners on one results folder",
    "data file truncated",
    "data file with one flipped byte",
    "checkpoint damaged",
    "results file partly written",
    "manifest partly written",
    "disk full while writing",
    "NaN loss",
]
