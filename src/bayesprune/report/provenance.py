"""Where the book's numbers come from: every profile with finished runs, the commits that trained them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesprune.pipeline.results import load_manifests


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
