"""Where the book's numbers come from: every profile with finished runs, the commits that trained them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesprune.pipeline.profiles import load_profiles
from bayesprune.pipeline.results import finished_runs, load_manifests


def profile_provenance(results_root: Path) -> pd.DataFrame:
    """Per profile with finished runs under results_root: its runs, the commits they were trained from (a commit
    ending in -dirty trained from changed code), how many trained from a clean tree, the training hours and the
    devices."""
    rows = []
    for folder in sorted(p for p in Path(results_root).iterdir() if p.is_dir() and any(p.glob("runs/*/manifest.json"))):
        manifests = load_manifests(folder)
        versions = [m["code_version"] for m in manifests]
        rows.append({
            "profile": folder.name,
            "runs": len(manifests),
            "trained from a clean tree": sum(not v.endswith("-dirty") and v != "unknown" for v in versions),
            "commits": ", ".join(sorted(set(versions))),
            "training (hours)": sum(m["train_seconds"] for m in manifests) / 3600,
            "devices": ", ".join(sorted({m["device_name"].split(",")[0] for m in manifests})),
        })
    return pd.DataFrame(rows).set_index("profile")


def profile_status(results_root: Path, profiles_path: Path | None = None) -> pd.DataFrame:
    """Every profile of profiles.yml as it stands here: what it is for (its description's first clause), the runs
    its grid holds, how many have finished under results_root/<profile>, and whether it is a committed reference;
    read from the file and the folders, so that it cannot go stale."""
    rows = []
    for name, profile in load_profiles(profiles_path).items():
        finished = len(finished_runs(Path(results_root) / name))
        grid = len(profile.runs())
        summary = profile.description.split(". ")[0].split(": ")[0].rstrip(".")
        rows.append({"profile": name, "what it is for": summary + ".",
                     "runs": grid, "finished here": finished,
                     "state": "run" if finished >= grid else "partly run" if finished else "not yet run",
                     "reference": "yes" if profile.reference else "no"})
    return pd.DataFrame(rows).set_index("profile")
