"""What a reader meets on each page of the built book, measured in headless Chromium: its length in screens, its
densest paragraph (typeset math counted as the reader sees it), its widest table, the cells that say "nan"."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml

from bayesprune.report.pdf import CHROMIUM_FLAGS, chromium_executable, page_order

SCREEN = (1300, 900)  # a laptop's viewport, CSS pixels: one screen
# a number as the reader counts one (0.982, 1e-3, 87, 2.3 %, Dropout 0.5, each part of 784-500-500-10), not a digit
# inside a name (L2, e^-6, fashion-mnist-s1)
NUMBER = r"(?<![\w.^\-−])[-+−]?(?:\d+(?:[.,]\d+)?|\.\d+)(?:e[-+−]?\d+)?(?![\w-])"

# per page: the main column's height, every paragraph's count of numbers, every table's columns and overflow
_MEASURE = """(pattern) => {
  const main = document.querySelector('main');
  const re = new RegExp(pattern, 'g');
  // prose, and every block of text a run printed (a reader reads an output as a paragraph); not tables, not code
  const text = Array.from(main.querySelectorAll('p, li, pre'))
    .filter(e => !e.closest('table, .cell_input') && !(e.tagName !== 'PRE' && e.closest('pre')));
  const prose = text.filter(e => !e.closest('details'));
  const folded = text.filter(e => e.closest('details'));
  const words = e => {
    const copy = e.cloneNode(true);
    copy.querySelectorAll('mjx-container, .math, a.reference, span.cite').forEach(m => m.remove());
    if (e.tagName !== 'PRE') copy.querySelectorAll('code').forEach(m => m.remove());
    return copy.textContent
      .replace(/(\\d)[ \u2009\u202f](?=\\d{3}\\b)/g, '$1')          // 60 000: one number
      .replace(/(\\d)[-–](?=\\d)/g, '$1 ')                      // 784-500-500-10 and 95-99 %: each part a number
      .replace(/\\[\\d{1,3}\\]|\\[[A-Z][a-z]+\\d{2}\\]|\\(\\d{4}\\)|\\b(?:Fig(?:ure)?|Table|Chapter)\\.? \\d+/g, ' ');  // citations, years
  };
  // typeset math: each number MathJax set (1/2 is two), not a sub- or superscript's (sigma_1, e^{-6})
  const mathNumbers = e => Array.from(e.querySelectorAll('mjx-container mjx-mn'))
    .filter(n => !n.closest('mjx-script')).length;
  const count = e => (words(e).match(re) || []).length + mathNumbers(e);
  const counts = prose.map(count);
  const foldedCounts = folded.map(count);
  const tables = Array.from(main.querySelectorAll('table')).filter(t => !t.closest('details'));
  const cells = Array.from(main.querySelectorAll('table td, table th')).map(c => c.textContent.trim().toLowerCase());
  return {
    height: main.getBoundingClientRect().height,
    numbers: counts.length ? Math.max(...counts) : 0,
    dense: prose.filter((e, i) => counts[i] > 8).map(e => e.innerText.slice(0, 80)),
    folded: foldedCounts.length ? Math.max(...foldedCounts) : 0,
    foldedDense: folded.filter((e, i) => foldedCounts[i] > 10).map(e => e.textContent.trim().slice(0, 80)),
    columns: tables.length ? Math.max(...tables.map(t => Math.max(0, ...Array.from(t.rows).map(r => r.cells.length)))) : 0,
    wide: tables.filter(t => t.scrollWidth > (t.parentElement.closest('section') || main).clientWidth + 1).length,
    nan: cells.filter(c => /(^|[^a-z])[-+]?nan([^a-z]|$)/.test(c)).length,
    tables: tables.length,
  };
}"""


# wait until MathJax has typeset the page (a page without math has nothing to wait for)
_TYPESET = "() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null"


@contextmanager
def served(html_dir: Path) -> Iterator[str]:
    """The built book served over http on loopback, as a reader's browser fetches it."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        """Static files without a log line per request."""

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            """Stay silent."""

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html_dir)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def page_parts(toc: Path) -> dict[str, str]:
    """Each table-of-contents entry's part (its caption; the root is the landing page)."""
    spec = yaml.safe_load(Path(toc).read_text())
    parts = {spec["root"]: "Landing page"}

    def walk(entries: list[dict], caption: str) -> None:
        for entry in entries:
            key = entry.get("file") or entry.get("glob", "").replace("/*", "")
            parts.setdefault(key, caption)
            walk(entry.get("sections", []), caption)

    for part in spec.get("parts", []):
        walk(part["chapters"], part["caption"])
    return parts


def _part_of(page: str, parts: dict[str, str]) -> str:
    """The part a built page belongs to (a globbed page belongs to its folder's entry)."""
    stem = page.removesuffix(".html")
    return parts.get(stem) or parts.get(stem.rsplit("/", 1)[0], "")


def measure_book(html_dir: Path, toc: Path, browser=None, skip: tuple[str, ...] = ("runs/",)) -> pd.DataFrame:
    """One row per page in the book's order (those under a `skip` folder left out: each run's executed notebooks):
    part, screens at 1300 x 900, the most numbers in one paragraph (and the paragraphs over eight), the same for
    the paragraphs a reader must open (collapsed, over ten listed), the widest
    table's columns, tables wider than their column, "nan" cells in any table, collapsed ones included."""
    pages = [page for page in page_order(toc, html_dir)
             if not str(page.relative_to(html_dir)).startswith(skip)]
    if not pages:
        raise FileNotFoundError(f"no built pages under {html_dir}: run `make book` first")
    parts = page_parts(toc)
    rows = []
    with served(html_dir) as url, _browser(browser) as chromium:
        page = chromium.new_page(viewport={"width": SCREEN[0], "height": SCREEN[1]})
        for path in pages:
            name = str(path.relative_to(html_dir))
            page.goto(f"{url}/{name}", wait_until="networkidle")
            page.evaluate(_TYPESET)
            seen = page.evaluate(_MEASURE, NUMBER)
            answer = page.evaluate("() => { const all = document.querySelectorAll('main p.answer');"  # its last part
                                   " const a = all[all.length - 1];"
                                   " return a ? a.getBoundingClientRect().bottom + window.scrollY : null; }")
            rows.append({"page": name, "part": _part_of(name, parts), "screens": seen["height"] / SCREEN[1],
                         "answer ends at (px)": answer,
                         "most numbers in a paragraph": seen["numbers"], "dense paragraphs": seen["dense"],
                         "most numbers in a collapsed paragraph": seen["folded"],
                         "dense collapsed paragraphs": seen["foldedDense"],
                         "tables": seen["tables"], "widest table (columns)": seen["columns"],
                         "tables wider than the column": seen["wide"], "nan cells": seen["nan"]})
        page.close()
    return pd.DataFrame(rows).set_index("page")


@contextmanager
def _browser(browser=None) -> Iterator:
    """The browser given, else a headless Debian Chromium for the measurement's length."""
    if browser is not None:
        yield browser
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_executable(), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            instance.close()


def screens_per_part(measured: pd.DataFrame) -> pd.Series:
    """Screens per part of the book, in the book's order."""
    return measured.groupby("part", sort=False)["screens"].sum()
