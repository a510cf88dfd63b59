"""The machine a process runs on: the device it computes on and what its processor is."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")


def resolve_device(name: str) -> torch.device:
    """cuda when asked for (or available under auto), else cpu."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use 'auto' or 'cpu'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def cpuinfo_line(*prefixes: str) -> str | None:
    """The first line of /proc/cpuinfo that starts with one of prefixes, if the file and the line exist."""
    if CPUINFO.exists():
        for line in CPUINFO.read_text().splitlines():
            if line.startswith(prefixes):
                return line
    return None


def cpu_name() -> str:
    """The processor's model name."""
    line = cpuinfo_line("model name")
    return line.split(":", 1)[1].strip() if line else platform.processor() or platform.machine()


def machine_slug() -> str:
    """This machine's bench report name, from its processor and core count: 'cpu-amd-epyc-2cores'."""
    words = re.findall(r"[a-z0-9]+", re.sub(r"\((r|tm)\)", "", cpu_name().lower()))
    return f"cpu-{'-'.join(words[:2]) or 'unknown'}-{len(os.sched_getaffinity(0))}cores"


def cpu_flags() -> str:
    """The processor's feature flags line, so a build cached for one CPU never runs on another."""
    return cpuinfo_line("flags", "Features") or platform.processor()
