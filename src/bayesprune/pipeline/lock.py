"""Per-run locks, so two runners (or two Ray workers) never execute the same run at once."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class RunBusy(RuntimeError):
    """Another process holds the run's lock."""


@contextmanager
def run_lock(path: Path, name: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on path for the block; RunBusy names run `name` and its holder if taken.

    The operating system releases the lock when its holder dies, so a killed runner never leaves a
    run locked.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunBusy(f"{name} is being executed by another runner ({holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_holder_pid(path: Path) -> int | None:
    """The pid written by the process that holds the lock at path, if any."""
    try:
        words = Path(path).read_text().split()
    except FileNotFoundError:
        return None
    return int(words[1]) if len(words) > 1 and words[0] == "pid" else None
