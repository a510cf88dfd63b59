"""Atomic file writes: readers see the old file or the whole new one, never a part, and a crash after the write
leaves the whole new one on disk."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; if the block succeeds, give it the mode a new file gets under the
    umask (not mkstemp's owner-only 0600, so that colleagues sharing the folder can read it), flush it to disk,
    rename it over `path` and flush the folder, so that the rename survives a crash too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp_name)
        os.chmod(tmp_name, 0o666 & ~current_umask())
        fsync_path(Path(tmp_name))
        os.replace(tmp_name, path)
        fsync_path(path.parent)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
