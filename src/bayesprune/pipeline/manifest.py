"""What a run ran on: code version, library versions, device."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from bayesprune.atomic import atomic_write
from bayesprune.data.datasets import sha256_of
from bayesprune.host import cpu_name

LIBRARIES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "papermill", "bayesprune")


OUTPUT_FOLDERS = ("results", "book")  # what runs and builds write: changes there leave the code clean


def _git(checkout: Path, *args: str) -> subprocess.CompletedProcess:
    """A git command run in `checkout`."""
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=checkout, timeout=10)


def code_version(checkout: Path | None = None) -> str:
    """`git describe` of a checkout (default: the one holding this package), ending in -dirty when a tracked file
    outside the output folders (results, book) differs from the commit; 'unknown' outside a checkout."""
    checkout = Path(checkout) if checkout else Path(__file__).resolve().parent
    try:
        described = _git(checkout, "describe", "--always", "--tags").stdout.strip()
        if not described:
            return "unknown"
        root = _git(checkout, "rev-parse", "--show-toplevel").stdout.strip()
        excluded = [f":(exclude){folder}" for folder in OUTPUT_FOLDERS]
        changed = _git(Path(root), "diff", "--quiet", "HEAD", "--", ".", *excluded).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described + ("-dirty" if changed else "")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the numbers."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def device_description(device: str) -> str:
    """Human-readable name of the device a run used."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    threads = torch.get_num_threads()
    return f"{cpu_name()}, {threads} thread{'s' if threads > 1 else ''}"


def environment(device: str) -> dict[str, Any]:
    """Everything a manifest records besides the config and timings."""
    return {
        "code_version": code_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "device": device,
        "device_name": device_description(device),
    }


class ResultsIntegrityError(RuntimeError):
    """A finished run's manifest or one of the files it lists is missing, unreadable or altered."""


MANIFEST = "manifest.json"


def _sealed_files(run_dir: Path) -> list[Path]:
    """The files a manifest vouches for: everything in the run folder but itself, checkpoints and hidden files."""
    return sorted(p for p in Path(run_dir).iterdir()
                  if p.is_file() and p.name != MANIFEST and p.suffix != ".pt" and not p.name.startswith("."))


def write_manifest(data: dict[str, Any], run_dir: Path) -> None:
    """Write run_dir/manifest.json last, with the SHA-256 of every file it vouches for."""
    files = {p.name: sha256_of(p) for p in _sealed_files(run_dir)}
    with atomic_write(Path(run_dir) / MANIFEST) as tmp:
        tmp.write_text(json.dumps({**data, "files": files}, indent=2, sort_keys=True) + "\n")


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """A finished run's manifest, after checking every file it lists; ResultsIntegrityError names what is wrong."""
    path = Path(run_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ResultsIntegrityError(f"{path} is damaged ({error}); delete {run_dir} to run it again") from error
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ResultsIntegrityError(f"{path} lists no file hashes; delete {run_dir} to run it again")
    for name, expected in files.items():
        target = Path(run_dir) / name
        actual = sha256_of(target) if target.exists() else "missing"
        if actual != expected:
            raise ResultsIntegrityError(
                f"{target} does not match its manifest (expected sha256 {expected}, got {actual}); "
                f"delete {run_dir} to run it again"
            )
    return manifest


def training_seconds(manifest: dict[str, Any], runs_dir: Path) -> float:
    """The seconds a run's training took, from its manifest: its sibling's in runs_dir where it was pruned from a
    sibling's training (`trained_in`)."""
    sibling = manifest.get("trained_in")
    return read_manifest(Path(runs_dir) / sibling)["train_seconds"] if sibling else manifest["train_seconds"]
