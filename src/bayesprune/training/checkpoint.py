"""Checkpoints written atomically and read back with weights_only=True."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bayesprune.atomic import atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint is unreadable or belongs to another configuration."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write state to a temporary file beside path, then rename it over path."""
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (tensors and plain containers only); CheckpointError if it is damaged."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {path} is unreadable ({error}); delete it to retrain") from error
