"""The book's result chapters: one table of chapter notebook -> the parameters it takes, in book order.

`bayesprune chapters` executes them on a profile's results; the Makefile's nbval list and the table
of contents are checked against this table (tests/test_packaging.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import yaml

from .execute import NOTEBOOKS, execute_notebook
from .profiles import PROJECT_ROOT, Profile

RESULTS = PROJECT_ROOT / "results"
REFERENCE_PROFILE = "paper"  # the profile whose book is the published report
BOOK_CONFIG = PROJECT_ROOT / "_config.yml"
BUILT_CONFIG = "_config.built.yml"  # written beside the chapters: _config.yml plus the profile's banner
RUN_NOTEBOOKS = ("train", "prune")  # executed per run by the runner, copied into the book
CHAPTERS: dict[str, tuple[str, ...]] = {
    "prior": (),
    "training": ("results_dir", "converged_dir"),
    "weights": ("results_dir", "converged_dir"),
    "pruning": ("results_dir",),
    "audit": ("results_dir", "ablation_dir"),
    "operating_point": ("regime_dir", "search_dir", "converged_dir"),
    "compute": ("bench_dir", "results_dir"),
    "claims": ("results_dir", "bench_dir", "converged_dir", "search_dir"),
    "reproducibility": ("results_dir",),
    "reliability": ("record_path",),
}


def parameter_values(results_dir: Path) -> dict[str, str]:
    """Every chapter parameter's value: the profile's results, and the committed references beside them
    (the defect ablation's too, where the profile retrains no deviation)."""
    retrained = any(Path(results_dir).glob("runs/*-without-*/manifest.json"))
    return {
        "results_dir": str(results_dir),
        "ablation_dir": str(results_dir if retrained else RESULTS / REFERENCE_PROFILE),
        "bench_dir": str(RESULTS / "bench"),
        "regime_dir": str(RESULTS / "regime"),
        "search_dir": str(RESULTS / "search"),
        "converged_dir": str(RESULTS / "converged"),
        "record_path": str(RESULTS / "reliability" / "record.json"),
    }


def build_chapters(results_dir: Path, book_dir: Path) -> list[Path]:
    """Execute the chapter notebooks on a results folder into book_dir/results and copy every run's notebooks."""
    results_dir, book_dir = Path(results_dir).resolve(), Path(book_dir).resolve()
    if not any(results_dir.glob("runs/*/manifest.json")):
        raise FileNotFoundError(f"no finished runs under {results_dir}; run `bayesprune run` first")
    out_dir, runs_out = book_dir / "results", book_dir / "runs"
    for folder in (out_dir, runs_out):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    values = parameter_values(results_dir)
    written = []
    for name, parameters in CHAPTERS.items():
        output = out_dir / f"{name}.ipynb"
        execute_notebook(name, output, {key: values[key] for key in parameters})
        fold_code(output)
        written.append(output)
    for run_dir in sorted(results_dir.glob("runs/*/")):
        for name in RUN_NOTEBOOKS:
            if (run_dir / f"{name}.ipynb").exists():
                target = runs_out / f"{run_dir.name}-{name}.ipynb"
                shutil.copy(run_dir / f"{name}.ipynb", target)
                fold_code(target)
                written.append(target)
    return written


PLUMBING = {"parameters", "injected-parameters"}  # cells a reader never needs: removed from the page
SHOWN = {"remove-cell", "remove-input", "hide-input", "hide-cell", "remove-output"}  # a cell's own choice


def fold_code(path: Path) -> None:
    """Make an executed chapter read as a report: parameter cells removed (they hold machine paths), every
    other code cell's source folded away behind a toggle unless the notebook chose otherwise."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if PLUMBING & set(tags):
            tags.append("remove-cell")
        elif not SHOWN & set(tags):
            tags.append("hide-input")
    nbformat.write(notebook, path)


def refresh_stored_outputs() -> list[Path]:
    """Re-execute every notebook in place with its default parameters (the smoke results), so that the
    outputs nbval compares against are today's; run after `bayesprune run --profile smoke`."""
    names = [*RUN_NOTEBOOKS, *CHAPTERS]
    for name in names:
        execute_notebook(name, NOTEBOOKS / f"{name}.ipynb", {})
        forget_paths(NOTEBOOKS / f"{name}.ipynb")
    return [NOTEBOOKS / f"{name}.ipynb" for name in names]


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


def write_book_config(profile: Profile, book_dir: Path) -> Path:
    """_config.yml with the profile's banner (jupyter-book's html announcement) where it is not the reference."""
    config = yaml.safe_load(BOOK_CONFIG.read_text())
    notice = banner(profile)
    if notice:
        config.setdefault("html", {})["announcement"] = notice
    target = Path(book_dir) / BUILT_CONFIG
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


if __name__ == "__main__":  # the chapter notebooks' paths, for the Makefile's nbval list
    print(" ".join(f"notebooks/{name}.ipynb" for name in CHAPTERS))
