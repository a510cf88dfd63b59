"""Atomic writes: a file others can read, flushed to disk with its folder, and nothing left on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bayesprune import atomic
from bayesprune.atomic import atomic_write


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_allows(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        with atomic_write(tmp_path / "table.csv") as tmp:
            tmp.write_text("a,b\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "table.csv").stat().st_mode) == mode


def test_the_file_is_flushed_before_the_rename_and_its_folder_after(tmp_path, monkeypatch):
    events = []
    flush, replace = atomic.fsync_path, os.replace
    monkeypatch.setattr(atomic, "fsync_path", lambda p: events.append(("fsync", Path(p).name)) or flush(p))
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: events.append(("rename", Path(b).name)) or replace(a, b))
    with atomic_write(tmp_path / "run" / "history.csv") as tmp:
        tmp.write_text("epoch\n1\n")
    assert events[0][0] == "fsync" and events[0][1].startswith(".history.csv.")  # the temporary file, whole
    assert events[1:] == [("rename", "history.csv"), ("fsync", "run")]
    assert (tmp_path / "run" / "history.csv").read_text() == "epoch\n1\n"


def test_a_failing_block_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "kept.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["kept.json"]
