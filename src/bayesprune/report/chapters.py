"""The book's result chapters: one table of chapter notebook -> the parameters it takes, in book order,
and the book built from them.

`bayesprune book` executes the chapters on a profile's results and builds the HTML. The reference
profile's chapters are written into book/ itself and committed, so `jupyter-book build book` builds the
published report as cloned; any other profile's book is assembled in book/_build/source beside it, with a
banner, and never touches the committed chapters. The Makefile's nbval list and the table of contents
are checked against CHAPTERS (tests/test_packaging.py).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import yaml

from bayesprune.pipeline.execute import NOTEBOOKS, execute_notebook
from bayesprune.pipeline.profiles import PROJECT_ROOT, Profile
from bayesprune.report.structured import has_bcgnj
from bayesprune.report.targets import has_targets

RESULTS = PROJECT_ROOT / "results"
REFERENCE_PROFILE = "paper"  # the profile whose book is the published report
BOOK = PROJECT_ROOT / "book"  # the book's sources; its _config.yml and _toc.yml link to the top-level files
BOOK_CONFIG = PROJECT_ROOT / "_config.yml"
STAGE = BOOK / "_build" / "source"  # where a book of another profile than the reference is assembled
BUILT = ("_build", "results", "runs")  # what a build writes into a book folder: never linked into the stage
RUN_NOTEBOOKS = ("train", "prune")  # executed per run by the runner, copied into the book
CHAPTERS: dict[str, tuple[str, ...]] = {
    "summary": ("results_dir", "bench_dir", "converged_dir", "search_dir", "blundell_dir", "frontier_dir",
                "frontier_fashion_dir", "sparsevd_schedule_dir", "reference_dir", "compression_dir", "seeds_mnist_dir",
                "seeds_fashion_dir", "anchor_seeds_dir", "anchor_seeds_fashion_dir", "anchor_seeds_longer_dir"),  # landing page
    "claims": ("results_dir", "bench_dir", "converged_dir", "search_dir", "blundell_dir", "frontier_dir",
               "frontier_fashion_dir", "sparsevd_schedule_dir", "compression_dir", "seeds_mnist_dir",
               "seeds_fashion_dir", "anchor_seeds_dir", "anchor_seeds_fashion_dir", "anchor_seeds_longer_dir"),
    "audit": ("results_dir", "ablation_dir"),
    "operating_point": ("regime_dir", "search_dir", "converged_dir"),
    "fairness": ("fair_search_dir", "target_search_dir", "target_edges_dir", "target_edges_fashion_dir"),
    "uncertainty": ("results_dir", "converged_dir", "seeds_mnist_dir", "seeds_fashion_dir"),
    "frontier": ("frontier_dir", "frontier_fashion_dir", "sparsevd_schedule_dir", "compression_dir", "anchor_seeds_dir",
                 "anchor_seeds_fashion_dir", "anchor_seeds_longer_dir"),
    "compression": ("compression_dir",),
    "prior": (),
    "training": ("results_dir", "converged_dir"),
    "weights": ("results_dir", "converged_dir"),
    "pruning": ("results_dir",),
    "blundell": ("blundell_search_dir", "blundell_dir", "table1_search_dir", "table1_edges_dir", "table1_dir",
                 "blundell_schedule_search_dir", "blundell_schedule_edges_dir", "blundell_schedule_dir",
                 "blundell_schedule_pruned_dir"),
    "frontier_details": ("frontier_dir", "frontier_search_dir", "frontier_search_fashion_dir",
                         "frontier_fashion_edges_dir", "frontier_fashion_dir", "latency_path", "converged_dir",
                         "study_sparsevd_dir", "sparsevd_schedule_dir", "compression_dir", "anchor_search_dir",
                         "anchor_search_fashion_dir", "anchor_search_fashion_edges_dir", "anchor_search_longer_dir",
                         "anchor_search_fashion_longer_dir", "anchor_seeds_dir", "anchor_seeds_fashion_dir",
                         "anchor_seeds_longer_dir"),
    "compute": ("bench_dir", "results_dir"),
    "reproducibility": ("results_dir", "results_root"),
    "reliability": ("record_path",),
    "using": ("results_root",),
}


def _as_seen_from_notebooks(path: Path) -> str:
    """A path as the chapters (executed in notebooks/) reach it: relative where it lies in the project, so that
    executed chapters name no machine's folders."""
    path = Path(path).resolve()
    return os.path.relpath(path, NOTEBOOKS) if path.is_relative_to(PROJECT_ROOT) else str(path)


def parameter_values(results_dir: Path) -> dict[str, str]:
    """Every chapter parameter's value: the profile's results, and the committed references beside them
    (the defect ablation's too, where the profile retrains no deviation, and BC-GNJ's where it trains none)."""
    retrained = any(Path(results_dir).glob("runs/*-without-*/manifest.json"))
    compressed = has_bcgnj(results_dir)
    paths = {
        "results_dir": Path(results_dir),
        "results_root": Path(results_dir).parent,
        "ablation_dir": Path(results_dir) if retrained else RESULTS / REFERENCE_PROFILE,
        "reference_dir": RESULTS / REFERENCE_PROFILE,
        "bench_dir": RESULTS / "bench",
        "regime_dir": RESULTS / "regime",
        "search_dir": RESULTS / "search",
        "converged_dir": RESULTS / "converged",
        "fair_search_dir": RESULTS / "fair-search",
        "target_search_dir": Path(results_dir) if has_targets(results_dir) else RESULTS / "target-search",
        "target_edges_dir": RESULTS / "target-search-edges",
        "target_edges_fashion_dir": RESULTS / "target-search-edges-fashion",
        "seeds_mnist_dir": RESULTS / "target-seeds-mnist",
        "seeds_fashion_dir": RESULTS / "target-seeds-fashion",
        "blundell_search_dir": RESULTS / "blundell-search",
        "blundell_dir": RESULTS / "blundell",
        "blundell_schedule_search_dir": RESULTS / "blundell-schedule-search",
        "blundell_schedule_edges_dir": RESULTS / "blundell-schedule-search-edges",
        "blundell_schedule_dir": RESULTS / "blundell-schedule",
        "blundell_schedule_pruned_dir": RESULTS / "blundell-schedule-pruned",
        "table1_search_dir": RESULTS / "table1-search",
        "table1_edges_dir": RESULTS / "table1-search-edges",
        "table1_dir": RESULTS / "blundell-table1",
        "frontier_dir": RESULTS / "frontier",
        "frontier_search_dir": RESULTS / "frontier-search",
        "frontier_search_fashion_dir": RESULTS / "frontier-search-fashion",
        "frontier_fashion_edges_dir": RESULTS / "frontier-search-fashion-edges",
        "anchor_search_dir": RESULTS / "frontier-anchor-search",
        "anchor_search_fashion_dir": RESULTS / "frontier-anchor-search-fashion",
        "anchor_search_fashion_edges_dir": RESULTS / "frontier-anchor-search-fashion-edges",
        "anchor_seeds_dir": RESULTS / "frontier-anchor-seeds",
        "anchor_seeds_fashion_dir": RESULTS / "frontier-anchor-seeds-fashion",
        "anchor_search_longer_dir": RESULTS / "frontier-anchor-search-longer",
        "anchor_search_fashion_longer_dir": RESULTS / "frontier-anchor-search-fashion-longer",
        "anchor_seeds_longer_dir": RESULTS / "frontier-anchor-seeds-longer",
        "frontier_fashion_dir": RESULTS / "frontier-fashion",
        "latency_path": RESULTS / "frontier" / "latency.csv",
        "study_sparsevd_dir": RESULTS / "study-sparsevd",
        "sparsevd_schedule_dir": RESULTS / "sparsevd-schedule",
        "compression_dir": Path(results_dir) if compressed else RESULTS / "bayesian-compression",
        "record_path": RESULTS / "reliability" / "record.json",
    }
    return {name: _as_seen_from_notebooks(path) for name, path in paths.items()}


def _execute_chapter(name: str, output: Path, parameters: dict) -> Path:
    """One chapter executed into output, its machine paths forgotten and its code folded away."""
    execute_notebook(name, output, parameters)
    forget_paths(output)
    fold_code(output, hide="remove-input")
    return output


def build_chapters(results_dir: Path, book_dir: Path, jobs: int | None = None) -> list[Path]:
    """Execute the chapter notebooks on a results folder into book_dir/results, `jobs` at a time (one per CPU by
    default: each runs in its own kernel, and none reads another's output), and copy every run's notebooks."""
    results_dir, book_dir = Path(results_dir).resolve(), Path(book_dir).resolve()
    if not any(results_dir.glob("runs/*/manifest.json")):
        raise FileNotFoundError(f"no finished runs under {results_dir}; run `bayesprune run` first")
    out_dir, runs_out = book_dir / "results", book_dir / "runs"
    for folder in (out_dir, runs_out):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    values = parameter_values(results_dir)
    names = list(CHAPTERS)
    with ProcessPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        written = list(pool.map(_execute_chapter, names, [out_dir / f"{name}.ipynb" for name in names],
                                [{key: values[key] for key in CHAPTERS[name]} for name in names]))
    for run_dir in sorted(results_dir.glob("runs/*/")):
        for name in RUN_NOTEBOOKS:
            if (run_dir / f"{name}.ipynb").exists():
                target = runs_out / f"{run_dir.name}-{name}.ipynb"
                shutil.copy(run_dir / f"{name}.ipynb", target)
                fold_code(target, template=NOTEBOOKS / f"{name}.ipynb")
                written.append(target)
    return written


PLUMBING = {"parameters", "injected-parameters"}  # cells a reader never needs: removed from the page
SHOWN = {"remove-cell", "remove-input", "hide-input", "hide-cell", "remove-output"}  # a cell's own choice


def fold_code(path: Path, template: Path | None = None, hide: str = "hide-input") -> None:
    """Make an executed notebook read as a report: parameter cells removed (they hold machine paths), every
    other code cell's source hidden as `hide` says (a chapter's removed from the page, its notebook holding it
    behind the page's download button; a run's folded behind a toggle) unless the notebook chose otherwise. A
    run's notebook, executed from `template` perhaps long ago, takes the template's figure captions of today."""
    notebook = nbformat.read(path, as_version=4)
    captions = {}
    if template is not None:
        captions = {cell.source: cell.metadata["mystnb"] for cell in nbformat.read(template, as_version=4).cells
                    if "mystnb" in cell.metadata}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if cell.source in captions:
            cell.metadata["mystnb"] = captions[cell.source]
        tags = cell.metadata.setdefault("tags", [])
        if PLUMBING & set(tags):
            tags.append("remove-cell")
        elif not SHOWN & set(tags):
            tags.append(hide)
    nbformat.write(notebook, path)


def refresh_stored_outputs() -> list[Path]:
    """Re-execute every notebook in place with its default parameters (the smoke results), so that the
    outputs nbval compares against are today's; run after `bayesprune run --profile smoke`."""
    for path in nbval_notebooks():
        execute_notebook(path.stem, path, {})
        forget_paths(path)
    return nbval_notebooks()


def forget_paths(path: Path) -> None:
    """Drop the machine paths papermill records in a notebook's metadata (the committed sources keep none)."""
    notebook = nbformat.read(path, as_version=4)
    for key in ("input_path", "output_path"):
        notebook.metadata.get("papermill", {}).pop(key, None)
    nbformat.write(notebook, path)


def banner(profile: Profile) -> str | None:
    """The notice every page of a book built from a profile other than the reference carries, else None."""
    if profile.name == REFERENCE_PROFILE:
        return None
    return (f"Built from the <b>{profile.name}</b> profile ({profile.description.rstrip('.')}). The report's "
            f"conclusions rest on the committed reference results ({REFERENCE_PROFILE}, regime, search, "
            "converged); a smaller profile shows the pipeline at work, not those conclusions.")


def book_config(profile: Profile) -> dict:
    """_config.yml, with the profile's banner (jupyter-book's html announcement) where it is not the reference."""
    config = yaml.safe_load(BOOK_CONFIG.read_text())
    notice = banner(profile)
    if notice:
        config.setdefault("html", {})["announcement"] = notice
    return config


def book_source(profile: Profile, book_dir: Path = BOOK, stage: Path = STAGE) -> Path:
    """The folder a profile's book is built from: book_dir itself for the reference, else a fresh stage that
    links book_dir's sources and carries the profile's configuration."""
    if profile.name == REFERENCE_PROFILE:
        return Path(book_dir)
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for item in sorted(Path(book_dir).iterdir()):
        if item.name not in BUILT and item.name != "_config.yml" and not item.name.endswith(".log"):
            (stage / item.name).symlink_to(item.resolve())
    (stage / "_config.yml").write_text(yaml.safe_dump(book_config(profile), sort_keys=False))
    return stage


VENDORED_MATHJAX = Path("_vendor") / "mathjax" / "tex-chtml.js"  # the book's MathJax, served from the book itself


def check_vendored_mathjax(book_dir: Path = BOOK) -> None:
    """Raise FileNotFoundError unless the book's own MathJax is in place: without it every formula fails silently in
    a book that must work with no network."""
    if not (Path(book_dir) / VENDORED_MATHJAX).is_file():
        raise FileNotFoundError(f"{Path(book_dir) / VENDORED_MATHJAX} is missing: the book serves its own MathJax; "
                                "run `make setup` (it fetches MathJax with npm) and build again")


def build_book(profile: Profile, results_root: Path = RESULTS, book_dir: Path = BOOK) -> Path:
    """Execute the chapters on results_root/<profile> and build the HTML into book_dir/_build/html; its index."""
    check_vendored_mathjax(book_dir)
    shutil.rmtree(Path(book_dir) / "_build", ignore_errors=True)
    source = book_source(profile, book_dir, Path(book_dir) / "_build" / "source")
    written = build_chapters(Path(results_root) / profile.name, source)
    print(f"chapters: {len(written)} notebooks of profile {profile.name} executed")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    # jupyter-book's banner and paths say nothing the last line does not; its output is shown when it fails.
    built = subprocess.run([str(jupyter_book), "build", str(source), "-q", "--path-output", str(book_dir),
                            "-W", "-n", "--keep-going"], capture_output=True, text=True)
    if built.returncode:
        sys.stdout.write(built.stdout)
        sys.stderr.write(built.stderr)
        raise subprocess.CalledProcessError(built.returncode, built.args)
    return Path(book_dir) / "_build" / "html" / "index.html"


def nbval_notebooks() -> list[Path]:
    """The notebooks `pytest --nbval` checks, in order: a run's two, then the chapters."""
    return [NOTEBOOKS / f"{name}.ipynb" for name in (*RUN_NOTEBOOKS, *CHAPTERS)]
