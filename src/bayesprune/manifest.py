"""What a run ran on: code version, library versions, device."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

LIBRARIES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "papermill", "bayesprune")


def code_version() -> str:
    """`git describe` of the checkout holding this package, or 'unknown'."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the numbers."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_description(device: str) -> str:
    """Human-readable name of the device a run used."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


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
