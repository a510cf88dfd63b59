"""Shared fixtures: the real datasets (fetched by `make data`) and a small training config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bayesprune.config import RunConfig
from bayesprune.data import FILES, SHA256, data_root, raw_dir, sha256_of


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
