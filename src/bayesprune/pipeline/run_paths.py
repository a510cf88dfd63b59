"""Where one run of a grid lives: its finished folder, its hidden work-in-progress folder and its lock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bayesprune.config import RunConfig


def run_id(cfg: RunConfig) -> str:
    """Folder name of a run."""
    protocol = cfg.protocol_label.replace(" + ", "+").replace(" ", "-")
    variant = f"-{cfg.variant}" if cfg.variant else ""
    return f"{cfg.dataset}-{cfg.method}-{protocol}{variant}-s{cfg.seed}"


@dataclass(frozen=True)
class RunPaths:
    """The paths of run `name` under a profile's runs folder."""

    runs_dir: Path
    name: str

    @classmethod
    def of(cls, runs_dir: Path, cfg: RunConfig) -> RunPaths:
        """The paths of the run that trains cfg."""
        return cls(Path(runs_dir), run_id(cfg))

    @property
    def final(self) -> Path:
        """The finished run, written only by renaming `partial` once its manifest is in."""
        return self.runs_dir / self.name

    @property
    def partial(self) -> Path:
        """The run in progress, with its epoch checkpoints (hidden, so readers of runs/ never see it)."""
        return self.runs_dir / f".{self.name}.partial"

    @property
    def lock(self) -> Path:
        """The lock file held while a process executes the run."""
        return self.runs_dir / f".{self.name}.lock"
