"""What `make report` prints: read from the log `make test` keeps of `make report PROFILE=smoke`."""

import re

import pytest

from bayesprune.pipeline.profiles import PROJECT_ROOT

pytestmark = pytest.mark.report

LOG = PROJECT_ROOT / "book" / "report-smoke.log"
NOISE = re.compile(r"warn|TCP|encrypt|KeyboardInterrupt|Traceback|profiler|gpuGetDeviceCount|Deprecat", re.IGNORECASE)
PROGRESS = re.compile(r"^profile smoke: +\d+%")
SCREEN = 15  # the data check, the profile, the grid's outcome, the chapters, the HTML path: well within a screen


@pytest.fixture(scope="module")
def lines() -> list[str]:
    """The log's lines, the progress bar's carriage-return updates as lines of their own."""
    if not LOG.exists():
        pytest.fail(f"{LOG} is missing: `make test` writes it with `make report PROFILE=smoke`")
    return [line for line in re.split(r"[\r\n]+", LOG.read_text()) if line.strip()]


def test_report_prints_no_warning(lines):
    assert [line for line in lines if NOISE.search(line)] == []


def test_report_ends_with_the_path_of_the_html(lines):
    assert lines[-1] == "HTML: book/_build/html/index.html"


def test_report_fits_on_one_screen_apart_from_the_progress_bar(lines):
    rest = [line for line in lines if not PROGRESS.match(line)]
    assert any(PROGRESS.match(line) for line in lines)
    assert len(rest) <= SCREEN, "\n".join(rest)
