"""The package's folders are its layers: nothing imports upward, and the library map ("Using bayesprune") lists
every module."""

from __future__ import annotations

import re
from pathlib import Path

from bayesprune.config import KL_WEIGHTINGS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bayesprune"
TOP = ("config", "host", "atomic", "native", "cli")
LAYERS = {"data": 1, "model": 2, "compress": 3, "evaluate": 4, "training": 5, "pipeline": 6, "performance": 7, "report": 7}


def _modules() -> dict[str, str]:
    """module name -> its folder ('(top)' for the top level), for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            if parts[:-1] == ("native",):
                found["native"] = "(top)"
            continue
        found[parts[-1]] = parts[0] if len(parts) > 1 else "(top)"
    return found


def _library_section() -> str:
    """The library map and what follows it in the "Using bayesprune" appendix."""
    import nbformat

    notebook = nbformat.read(ROOT / "notebooks" / "using.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    return text.split("## The library", 1)[1]


def _library_table() -> dict[str, str]:
    """module -> folder, as the appendix's library table gives them."""
    section = _library_section()
    listed, folder = {}, None
    for row in re.findall(r"^\|(.*)\|$", section, flags=re.M)[2:]:  # after the header and its rule
        cells = row.split("|")
        folder = cells[0].strip().strip("`") or folder
        for module in re.findall(r"`(\w+)`", cells[1]):
            listed[module] = folder
    return listed


def test_the_library_map_lists_every_module_in_its_folder():
    assert _library_table() == _modules()


def test_the_library_map_names_every_kl_weighting():
    section = _library_section()
    assert all(f"`{name}`" in section for name in KL_WEIGHTINGS)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        folder = path.relative_to(PACKAGE).parts[0]
        own = 0 if folder.endswith(".py") or folder == "native" else LAYERS[folder]
        if folder == "cli.py":
            continue
        for target in re.findall(r"^\s*from bayesprune\.(\w+)", path.read_text(), flags=re.M):
            rank = 0 if target in TOP else LAYERS[target]
            if rank > own or (rank == own and target != folder and rank > 0):
                upward.append(f"{path.relative_to(PACKAGE)} imports bayesprune.{target}")
    assert upward == []
