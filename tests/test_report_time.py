"""`make report` timed stage by stage in a fresh clone: every stage in turn, a failed one stops with its output, and
the compute chapter's table reads what it wrote."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest

from bayesprune.performance.report_time import STAGES, time_report, time_stages
from bayesprune.report.compute import report_scoring_reading, report_scoring_table, report_time_table


def _repository(tmp_path, failing: str = ""):
    """A git repository whose Makefile's stages each leave a mark (and one may fail)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    rules = "".join(f"{stage}:\n\t{'exit 3' if stage == failing else f'touch {stage}.done'}\n" for stage in STAGES)
    # `make run` leaves a run's manifest, as the grid does; the committed one below is not the clone's
    rules = rules.replace("touch run.done", "touch run.done && mkdir -p results/q/runs/a && cp manifest.json "
                          "results/q/runs/a/manifest.json")
    (repo / "manifest.json").write_text(json.dumps(
        {"config": {"dataset": "mnist", "method": "bbb", "variant": "x"}, "train_seconds": 10.0,
         "prune_seconds_by_part": {"Monte Carlo passes": 4.0}, "other": 1}))
    (repo / ".gitignore").write_text("results/*\n!results/old/\n")  # a local profile's results are ignored
    (repo / "results" / "old" / "runs" / "b").mkdir(parents=True)
    (repo / "results" / "old" / "runs" / "b" / "manifest.json").write_text("{}")
    (repo / "Makefile").write_text(rules)
    for command in (["init", "-q"], ["add", "Makefile", "manifest.json", ".gitignore", "results"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    return repo


def test_each_stage_runs_in_turn_in_a_fresh_clone_and_the_chapter_reads_the_report(tmp_path):
    report = time_report(_repository(tmp_path))
    assert list(report["stages"]) == list(STAGES)
    assert report["total_seconds"] == pytest.approx(sum(report["stages"].values()))
    assert report["runs"] == [{"config": {"dataset": "mnist", "method": "bbb", "variant": "x"}, "train_seconds": 10.0,
                               "prune_seconds_by_part": {"Monte Carlo passes": 4.0}}]  # the clone's run only
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "cpu.json").write_text(json.dumps(report))
    table = report_time_table(tmp_path / "reports")
    assert list(table.columns) == ["commit", "setup (min)", "data (min)", "run (min)", "book (min)", "make report (min)"]
    assert table["make report (min)"].iloc[0] == pytest.approx(report["total_seconds"] / 60)
    assert report_time_table(tmp_path / "missing").empty
    scoring = report_scoring_table(tmp_path / "reports")
    assert scoring.loc[("mnist", "bbb"), "scoring / training"] == pytest.approx(0.4)
    assert scoring.loc[("mnist", "bbb"), "Monte Carlo passes / training"] == pytest.approx(0.4)
    assert list(scoring.columns) == ["training, s", "scoring, s", "scoring / training",
                                     "Monte Carlo passes / training"]  # no post-hoc fit ran
    assert report_scoring_table(tmp_path / "missing").empty


def test_a_failed_stage_stops_the_timing_and_says_which(tmp_path):
    repo = _repository(tmp_path, failing="run")
    subprocess.run(["git", "clone", "-q", str(repo), str(tmp_path / "clone")], check=True)
    with pytest.raises(RuntimeError, match="`make run` failed"):
        time_stages(tmp_path / "clone", dict(os.environ))
    assert (tmp_path / "clone" / "data.done").exists() and not (tmp_path / "clone" / "book.done").exists()


def test_the_scoring_reading_names_who_met_half_of_training_and_the_monte_carlo_floor_of_the_rest():
    index = pd.MultiIndex.from_tuples([("mnist", "sgd"), ("mnist", "dropout0.5"), ("fashion-mnist", "dropout0.9"),
                                       ("mnist", "bbb")], names=["dataset", "method"])
    table = pd.DataFrame({"scoring / training": [0.3, 1.1, 0.9, 0.85],
                          "Monte Carlo passes / training": [0.0, 0.8, 0.7, 0.6]}, index=index)
    text = report_scoring_reading(table)
    assert text.startswith("Scoring took at most half of training for SGD. For Dropout and BBB, the Monte Carlo "
                           "passes alone took 0.70–0.80 (Dropout) and 0.60 (BBB) of training.")
    assert report_scoring_reading(table.iloc[:1]) == "Scoring took at most half of training for SGD."


def test_a_run_scored_again_reads_beside_its_committed_twin(tmp_path):
    from bayesprune.report.compute import rescoring_table

    run = tmp_path / "results" / "converged" / "runs" / "mnist-bbb-s1"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"code_version": "aaa", "notebook_seconds": {"prune": 300.0}}))
    (tmp_path / "rescored").mkdir()
    (tmp_path / "rescored" / "mnist-bbb-s1.json").write_text(json.dumps(
        {"profile": "converged", "run": "mnist-bbb-s1", "code_version": "bbb", "notebook_seconds": {"prune": 75.0}}))
    table = rescoring_table(tmp_path / "rescored", tmp_path / "results")
    row = table.loc[("converged", "mnist-bbb-s1")]
    assert (row["commit then"], row["commit now"], row["now / then"]) == ("aaa", "bbb", 0.25)
    assert rescoring_table(tmp_path / "missing", tmp_path / "results").empty


def test_timings_read_oldest_commit_first_whatever_their_file_names(tmp_path):
    from bayesprune.pipeline.profiles import PROJECT_ROOT

    older, newer = (subprocess.run(["git", "rev-parse", "--short", ref], cwd=PROJECT_ROOT, check=True,
                                   capture_output=True, text=True).stdout.strip() for ref in ("HEAD~1", "HEAD"))
    for name, commit in (("a.json", newer), ("b.json", older)):
        (tmp_path / name).write_text(json.dumps({"machine": "m", "commit": commit, "stages": {"run": 60.0},
                                                 "total_seconds": 60.0}))
    assert report_time_table(tmp_path)["commit"].tolist() == [older, newer]


def test_scoring_before_and_after_reads_the_two_newest_timings_per_method(tmp_path):
    from bayesprune.pipeline.profiles import PROJECT_ROOT
    from bayesprune.report.compute import report_scoring_change

    older, newer = (subprocess.run(["git", "rev-parse", "--short", ref], cwd=PROJECT_ROOT, check=True,
                                   capture_output=True, text=True).stdout.strip() for ref in ("HEAD~1", "HEAD"))

    def run(dataset: str, seconds: float) -> dict:
        return {"config": {"dataset": dataset, "method": "bbb"}, "train_seconds": 50.0,
                "prune_seconds_by_part": {"Monte Carlo passes": seconds, "masks": 2.0}}

    for name, commit, seconds in (("a.json", newer, 30.0), ("b.json", older, 40.0)):
        (tmp_path / name).write_text(json.dumps({"machine": "m", "commit": commit, "stages": {"run": 1.0},
                                                 "total_seconds": 1.0,
                                                 "runs": [run("mnist", seconds), run("fashion-mnist", seconds + 2)]}))
    table = report_scoring_change(tmp_path)
    assert list(table.columns) == [f"scoring, s ({older})", f"scoring, s ({newer})",
                                   f"Monte Carlo passes, s ({older})", f"Monte Carlo passes, s ({newer})"]
    assert table.loc["BBB"].tolist() == [43, 33, 41, 31]
    (tmp_path / "b.json").unlink()
    assert report_scoring_change(tmp_path).empty
