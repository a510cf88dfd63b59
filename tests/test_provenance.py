"""Provenance: a run records the commit that produced it, and a reference profile trains only from a clean tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bayesprune.pipeline import runner
from bayesprune.pipeline.manifest import code_version
from bayesprune.pipeline.profiles import Profile, load_profiles
from bayesprune.pipeline.runner import DirtyTreeError, check_clean, run_grid


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A committed checkout with code and an output folder."""
    for name in ("src/code.py", "results/run/metrics.csv", "book/chapter.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_code_version_is_clean_until_code_changes_and_ignores_the_output_folders(checkout):
    assert not code_version(checkout).endswith("-dirty") and code_version(checkout) != "unknown"
    (checkout / "results/run/metrics.csv").write_text("2\n")
    (checkout / "book/chapter.ipynb").unlink()
    (checkout / "results/new.csv").write_text("new\n")
    assert not code_version(checkout / "src").endswith("-dirty")
    (checkout / "src/code.py").write_text("2\n")
    assert code_version(checkout / "src").endswith("-dirty")


def test_code_version_outside_a_checkout_is_unknown(tmp_path):
    assert code_version(tmp_path) == "unknown"


def _profile(reference: bool) -> Profile:
    return Profile(name="tiny", datasets=("mnist",), methods=("sgd",), seeds=(0,), fractions=(0.0,),
                   config=(("epochs", 1), ("train_subset", 200), ("test_subset", 100)), reference=reference)


def test_a_reference_profile_is_refused_from_a_dirty_tree_unless_allowed(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "code_version", lambda: "abc1234-dirty")
    with pytest.raises(DirtyTreeError, match="--allow-dirty"):
        run_grid(_profile(reference=True), tmp_path, progress=False)
    assert not list(tmp_path.glob("tiny/runs/*"))  # nothing started
    check_clean(_profile(reference=True), allow_dirty=True)
    check_clean(_profile(reference=False))
    monkeypatch.setattr(runner, "code_version", lambda: "abc1234")
    check_clean(_profile(reference=True))


def test_every_committed_profile_but_the_quick_ones_is_a_reference():
    profiles = load_profiles()
    assert {name for name, p in profiles.items() if not p.reference} == {"smoke", "quick"}
    root = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files", "results/*/runs/*/manifest.json"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.split()
    committed = {Path(p).parents[2].name for p in tracked}
    assert "paper" in committed
    assert committed <= {name for name, p in profiles.items() if p.reference}


def test_every_reference_profile_s_results_can_be_committed_and_no_local_one_s_can():
    root = Path(__file__).resolve().parents[1]
    profiles = load_profiles()
    paths = [f"results/{name}/runs/mnist-sgd-corrected-s1/manifest.json" for name in profiles]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=root, capture_output=True,
                             text=True).stdout.split()
    assert {Path(p).parts[1] for p in ignored} == {name for name, p in profiles.items() if not p.reference}


def test_the_appendix_names_each_profile_its_commits_and_its_clean_runs(tmp_path):
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.report.provenance import profile_provenance

    for profile, run, version, seconds in (("alpha", "a1", "abc1234", 1800.0), ("alpha", "a2", "abc1234-dirty", 1800.0),
                                           ("beta", "b1", "def5678", 360.0)):
        folder = tmp_path / profile / "runs" / run
        folder.mkdir(parents=True)
        write_manifest({"code_version": version, "train_seconds": seconds, "device_name": "some CPU, 2 threads"}, folder)
    (tmp_path / "empty" / "runs").mkdir(parents=True)  # a profile that has not finished a run is not listed
    table = profile_provenance(tmp_path)
    assert list(table.index) == ["alpha", "beta"]
    assert table.loc["alpha", "runs"] == 2 and table.loc["alpha", "trained from a clean tree"] == 1
    assert table.loc["alpha", "commits"] == "abc1234, abc1234-dirty"
    assert table.loc["alpha", "training (hours)"] == pytest.approx(1.0)
    assert table.loc["beta", "devices"] == "some CPU"
