"""The pins of `make setup` and environment.yml agree, and pyproject's ranges admit them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _pins_from_makefile() -> dict[str, str]:
    line = next(row for row in (ROOT / "Makefile").read_text().splitlines() if row.startswith("TORCH_PINS"))
    return dict(re.findall(r"(\w+)==([\w.]+)", line))


def _pins_from_environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    return dict(re.findall(r"^(\w+)==([\w.]+)$", "\n".join(pip), flags=re.M))


def _ranges_from_pyproject() -> dict[str, Requirement]:
    text = (ROOT / "pyproject.toml").read_text()
    deps = re.findall(r'"((?:torch|torchvision)[<>=!~][^"]*)"', text)
    return {Requirement(d).name: Requirement(d) for d in deps}


def test_makefile_and_environment_pin_the_same_versions():
    assert _pins_from_makefile() == _pins_from_environment() == {"torch": "2.14.1", "torchvision": "0.29.1"}


def test_the_conda_environment_carries_what_make_setup_needs_from_the_machine():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    packages = {item.split("=")[0] for item in env["dependencies"] if isinstance(item, str)}
    assert {"python", "pip", "nodejs", "c-compiler", "make"} <= packages  # npm for MathJax, cc for BBB's kernel
    python = next(item for item in env["dependencies"] if isinstance(item, str) and item.startswith("python="))
    requires = re.search(r'requires-python = "([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert Version(python.split("=")[1]) in SpecifierSet(requires)


def test_pyproject_ranges_admit_the_pins():
    ranges = _ranges_from_pyproject()
    for name, version in _pins_from_environment().items():
        assert Version(version) in ranges[name].specifier, (name, version, ranges[name])


def test_the_chapter_table_owns_the_chapter_list():
    from bayesprune.report.chapters import CHAPTERS, RUN_NOTEBOOKS
    from bayesprune.report.pdf import toc_entries

    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks == set(CHAPTERS) | set(RUN_NOTEBOOKS)  # every notebook is a chapter or a run's step
    listed = [f.removeprefix("results/") for f in toc_entries(ROOT / "_toc.yml") if f.startswith("results/")]
    assert sorted(listed) == sorted(CHAPTERS)


def test_a_book_from_another_profile_than_the_reference_carries_a_banner_and_leaves_book_alone(tmp_path):
    from bayesprune.pipeline.profiles import get_profile
    from bayesprune.report.chapters import BOOK, book_config, book_source

    smoke = book_config(get_profile("smoke"))
    assert "<b>smoke</b> profile" in smoke["html"]["announcement"]
    paper = book_config(get_profile("paper"))
    assert not paper["html"].get("announcement")
    assert paper == yaml.safe_load((ROOT / "_config.yml").read_text())  # otherwise the book's own configuration
    assert book_source(get_profile("paper")) == BOOK
    stage = book_source(get_profile("smoke"), BOOK, tmp_path / "stage")
    assert yaml.safe_load((stage / "_config.yml").read_text()) == smoke
    assert (stage / "methods.md").resolve() == BOOK / "methods.md" and (stage / "_toc.yml").resolve() == ROOT / "_toc.yml"
    assert not (stage / "results").exists() and not (stage / "_build").exists()


def test_jupyter_book_finds_the_top_level_configuration_in_book():
    assert (ROOT / "book" / "_config.yml").resolve() == ROOT / "_config.yml"
    assert (ROOT / "book" / "_toc.yml").resolve() == ROOT / "_toc.yml"


def test_make_setup_names_a_missing_prerequisite_before_installing_anything(tmp_path):
    import subprocess

    result = subprocess.run(["make", "-s", "-C", str(ROOT), "prerequisites", "PYTHON=/nonexistent/python3"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "make setup needs: python3-venv" in result.stdout and "apt-get install" in result.stdout
    assert subprocess.run(["make", "-s", "-C", str(ROOT), "prerequisites"], capture_output=True).returncode == 0


def test_the_book_build_stops_loudly_without_its_vendored_mathjax(tmp_path):
    from bayesprune.report.chapters import build_book, check_vendored_mathjax
    from bayesprune.pipeline.profiles import get_profile

    with pytest.raises(FileNotFoundError, match="make setup"):
        build_book(get_profile("smoke"), tmp_path / "results", tmp_path)
    (tmp_path / "_vendor" / "mathjax").mkdir(parents=True)
    (tmp_path / "_vendor" / "mathjax" / "tex-chtml.js").write_text("/* MathJax */")
    check_vendored_mathjax(tmp_path)  # in place: no error
