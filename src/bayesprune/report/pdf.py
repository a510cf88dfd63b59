"""The report as one PDF: every page of the built HTML book, in the table of contents' order, printed by
headless Chromium and joined."""

from __future__ import annotations

import html
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

# Headless and offline: the book needs no network, and nothing may try to reach one.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium_executable() -> str:
    """The system Chromium (Debian's `chromium` package)."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


def _toc_entries(entries: list[dict]) -> Iterator[str]:
    """File and glob entries of a _toc.yml level and the levels under it, in order."""
    for entry in entries:
        if "file" in entry:
            yield entry["file"]
        if "glob" in entry:
            yield entry["glob"]
        yield from _toc_entries(entry.get("sections", []))


def toc_entries(toc: Path) -> list[str]:
    """The root and every file or glob entry of a _toc.yml, in the order the book shows them."""
    spec = yaml.safe_load(Path(toc).read_text())
    return [spec["root"], *(f for part in spec.get("parts", []) for f in _toc_entries(part["chapters"]))]


def page_order(toc: Path, html_dir: Path) -> list[Path]:
    """The built book's HTML pages in the order the table of contents lists them (globs expanded, sorted)."""
    entries = toc_entries(toc)
    pages: list[Path] = []
    for entry in entries:
        matches = sorted(Path(html_dir).glob(f"{entry}.html")) if "*" in entry else [Path(html_dir) / f"{entry}.html"]
        pages += [page for page in matches if page.exists() and page not in pages]
    return pages


def page_title(page: Path) -> str:
    """A built page's title, without the book's name after it."""
    found = re.search(r"<title>(.*?)</title>", page.read_text(errors="replace"), flags=re.S)
    return html.unescape(found.group(1)).split(" — ")[0].strip() if found else page.stem


def print_book(html_dir: Path, toc: Path, target: Path, chromium: str | None = None) -> Path:
    """Print every page of the book in html_dir to one PDF at target (A4, backgrounds kept), with a bookmark per
    page under a bookmark per part of the table of contents; return target."""
    from bayesprune.report.readability import page_parts
    from playwright.sync_api import sync_playwright
    from pypdf import PdfWriter

    pages = page_order(toc, html_dir)
    if not pages:
        raise FileNotFoundError(f"no built pages under {html_dir}: run `make book` first")
    executable = chromium or chromium_executable()
    writer = PdfWriter()
    with tempfile.TemporaryDirectory(prefix="bayesprune-pdf-") as work, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        tab = browser.new_page()
        parts, marks = page_parts(toc), {}
        for number, page in enumerate(pages):
            tab.goto(page.resolve().as_uri(), wait_until="load")
            part = Path(work) / f"{number:04d}.pdf"
            tab.pdf(path=str(part), format="A4", print_background=True,
                    margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"})
            first = len(writer.pages)
            writer.append(str(part))
            stem = str(page.relative_to(html_dir)).removesuffix(".html")
            caption = parts.get(stem) or parts.get(stem.rsplit("/", 1)[0], "")
            if caption not in marks:
                marks[caption] = writer.add_outline_item(title=caption or page_title(page), page_number=first)
            writer.add_outline_item(title=page_title(page), page_number=first, parent=marks[caption])
        browser.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            writer.write(out)
    return target
