"""The built book in headless Chromium: every page loads offline, cleanly, with its images and captions,
fits the width of a laptop and of a phone, and names its profile. `make test` checks the smoke book;
`make book-check` the reference (paper) book, with BAYESPRUNE_BOOK_PROFILE=paper."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from bayesprune.report.pdf import CHROMIUM_FLAGS, chromium_executable

HTML = Path(__file__).resolve().parents[1] / "book" / "_build" / "html"

pytestmark = pytest.mark.browser
PROFILE = os.environ.get("BAYESPRUNE_BOOK_PROFILE", "smoke")  # the profile the built book comes from
REFERENCE = "paper"
WIDTHS = (1300, 390)  # a laptop and a phone, CSS pixels


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Stay silent."""


@pytest.fixture(scope="module")
def server():
    """The built book served over http on loopback."""
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML} has no built book: run `make book PROFILE={PROFILE}` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by playwright."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_executable(), headless=True, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


def _pages() -> list[str]:
    return sorted(str(p.relative_to(HTML)) for p in HTML.rglob("*.html") if "_static" not in p.parts
                  and "mathjax" not in p.parts)


def test_every_page_loads_offline_without_errors_names_its_profile_captions_its_figures_and_labels_its_tables(
        server, browser):
    """Every page loads cleanly; every figure fills the text column at 1300 px (the figure style sizes its text for
    that width; a figure folded in a dropdown fills the dropdown); every result chapter's tables show no integer index, no NaN and no raw method or dataset code
    (the reliability appendix lists commands and NaN losses, which are its point)."""
    pages = _pages()
    assert len(pages) >= 10
    problems: list[str] = []
    seen = problems.append
    for page_path in pages:
        page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
        page.on("console", lambda m, p=page_path: m.type == "error" and seen(f"{p}: console: {m.text}"))
        page.on("pageerror", lambda e, p=page_path: seen(f"{p}: page error: {e}"))
        page.on("response", lambda r, p=page_path: r.status >= 400 and seen(f"{p}: HTTP {r.status} {r.url}"))
        page.on("requestfailed", lambda r, p=page_path: seen(f"{p}: failed request {r.url}"))
        page.on("request", lambda r, p=page_path: urlparse(r.url).hostname not in ("127.0.0.1", None)
                and not r.url.startswith("data:") and seen(f"{p}: off-machine request {r.url}"))
        response = page.goto(f"{server}/{page_path}", wait_until="networkidle")
        assert response is not None and response.ok, page_path
        banner = " ".join(page.locator(".bd-header-announcement").all_inner_texts())
        if (f"{PROFILE} profile" in banner) != (PROFILE != REFERENCE):
            problems.append(f"{page_path}: banner {banner!r} for a book of the {PROFILE} profile")
        broken = page.evaluate("""() => Array.from(document.images)
            .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.src)""")
        problems += [f"{page_path}: image not loaded {src}" for src in broken]
        bare = page.evaluate("""() => Array.from(document.querySelectorAll('.cell_output img'))
            .filter(img => !img.closest('figure')?.querySelector('figcaption')).length""")
        if bare:
            problems.append(f"{page_path}: {bare} figure(s) without a caption")
        narrow = page.evaluate("""() => Array.from(document.querySelectorAll('.cell_output img'))
            .map(img => [img.getBoundingClientRect().width, img.closest('details, section')])
            .map(([shown, box]) => [shown, box.clientWidth - parseFloat(getComputedStyle(box).paddingLeft)
                                    - parseFloat(getComputedStyle(box).paddingRight)])
            .filter(([shown, column]) => shown < 0.97 * column)
            .map(([shown, column]) => `${Math.round(shown)} of ${column} px`)""")
        problems += [f"{page_path}: a figure narrower than the text column ({width})" for width in narrow]
        if (page_path.startswith("results/") or page_path == "index.html") and page_path != "results/reliability.html":
            problems += _table_problems(page_path, page)  # the reliability appendix's commands and NaN losses are its point
        page.close()
    assert problems == [], "\n".join(problems)


def test_pruning_chapter_shows_the_table_and_math_renders(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/results/pruning.html", wait_until="networkidle")
    tables = page.locator("table").all_inner_texts()
    assert any("BBB" in t and "study" in t and "ours" in t for t in tables)
    assert page.locator("img").count() >= 1
    page.goto(f"{server}/methods.html", wait_until="networkidle")
    page.wait_for_selector("mjx-container", timeout=10000)
    page.close()


def test_no_page_names_a_machine_path():
    import re

    root = str(HTML.parents[2])
    leaks = [page for page in _pages() if root in (text := (HTML / page).read_text(errors="replace"))
             or re.search(r"[\"'(\s](/tmp|/root|/home)/", text)]
    assert leaks == []


def test_no_page_shows_a_glued_object_s_placeholder():
    """A reading glued from another notebook renders as text, never as its object's plain-text stand-in."""
    import re

    shown = [page for page in _pages()
             if re.search(r"IPython(</span>)?(<span[^>]*>)?\.(</span>)?(<span[^>]*>)?core", (HTML / page).read_text(errors="replace"))]
    assert shown == []


def test_every_page_fits_a_laptop_and_a_phone(server, browser, tmp_path):
    """No page scrolls sideways at either width (wide tables scroll inside their own frame); a screenshot of
    every page at both widths is kept under tmp_path for review, with the list of frames that scroll
    (framed-scroll.txt)."""
    too_wide, framed = [], []
    for width in WIDTHS:
        page = browser.new_page(viewport={"width": width, "height": 900})
        for page_path in _pages():
            page.goto(f"{server}/{page_path}", wait_until="networkidle")
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 1:
                too_wide.append(f"{page_path} at {width} px: {overflow} px too wide")
            frames = page.evaluate("""() => Array.from(document.querySelectorAll('main *'))
                .filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX) && e.scrollWidth > e.clientWidth + 1)
                .map(e => (e.querySelector('caption')?.innerText || e.tagName.toLowerCase()).slice(0, 60))""")
            framed += [f"{page_path} at {width} px: {frame}" for frame in frames]
            shot = tmp_path / str(width) / page_path.replace(".html", ".png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        page.close()
    (tmp_path / "framed-scroll.txt").write_text("".join(f"{line}\n" for line in framed))
    print(f"{len(framed)} frame(s) scroll inside the page; see {tmp_path / 'framed-scroll.txt'}")
    assert too_wide == []
    assert len(list(tmp_path.rglob("*.png"))) == len(WIDTHS) * len(_pages())


def test_the_landing_page_holds_the_reproducibility_summary(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/index.html", wait_until="networkidle")
    text = page.locator("main").inner_text()
    for part in ("The answer.", "Reproducibility summary", "Scope of reproducibility", "Methodology", "Results",
                 "What was easy", "What was difficult", "Communication with original authors"):
        assert part in text
    assert page.locator("figure figcaption").count() >= 1 and page.locator("table.verdict-matrix").count() == 1
    assert page.locator("ul.findings li").count() in range(1, 5)  # at most four findings, computed from the runs
    page.close()


def test_the_verdict_matrix_fits_a_laptop_screen(server, browser):
    """The landing page's verdict matrix needs no horizontal scrolling at 1300 px (the landing page's screenshots
    at both widths are kept by the fit test, as index.png under its 1300 and 390 folders)."""
    page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
    page.goto(f"{server}/index.html", wait_until="networkidle")
    overflow = page.evaluate("""() => { let e = document.querySelector('table.verdict-matrix');
        while (e && e.tagName !== 'MAIN') { if (e.scrollWidth > e.clientWidth + 1) return e.scrollWidth - e.clientWidth;
        e = e.parentElement; } return 0; }""")
    page.close()
    assert overflow == 0, f"the verdict matrix is {overflow} px too wide at {WIDTHS[0]} px"


RAW_CODES = ("dropout0.5", "dropout0.75", "dropout0.9", "sgd-l1", "sgd-l2", "sgd-mixture", "fashion-mnist", "sparsevd", "bcgnj")


def _table_problems(page_path: str, page) -> list[str]:
    """What a page's tables show that a reader should not see: an integer index column, NaN, raw codes."""
    problems = []
    tables = page.evaluate("""() => Array.from(document.querySelectorAll('main table'))
        .map(t => ({text: t.innerText, heads: Array.from(t.querySelectorAll('tbody tr'))
            .map(r => (r.querySelector('th') || {}).innerText)}))""")
    for index, table in enumerate(tables):
        heads = [h for h in table["heads"] if h is not None]
        if heads and heads == [str(i) for i in range(len(heads))]:
            problems.append(f"{page_path} table {index}: integer index column")
        if "NaN" in table["text"].split():
            problems.append(f"{page_path} table {index}: NaN")
        problems += [f"{page_path} table {index}: raw code {code}" for code in RAW_CODES if code in table["text"].split()]
    return problems


MAIN_PARTS = ("Landing page", "Report")
MAIN_SCREENS = 60  # screens of 1300 x 900 the landing page and the report may fill together
MOST_NUMBERS = 8  # numbers in one paragraph, collapsed ones included (typeset math counts)


@pytest.fixture(scope="module")
def measured(browser):
    """Every page but the runs' notebooks, as a reader meets it (`report.readability`)."""
    from bayesprune.report.readability import measure_book

    return measure_book(HTML, HTML.parents[2] / "_toc.yml", browser)


def test_the_measure_counts_numbers_as_a_reader_does(browser, tmp_path):
    """Architectures and ranges count by their parts, 60 000 as one number, Dropout 0.5's rate as one, a printed
    output as a paragraph, typeset math by its numbers; names (L2, e^-6), subscripts, citations and code inputs do
    not count."""
    from bayesprune.report.readability import measure_book

    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text(
        "<html><body><main>"
        "<p>A 784-500-500-10 network on 60 000 images, pruned 95-99 %, beside Dropout 0.5 [12].</p>"
        "<p>L2 at e^-6 and fashion-mnist-s1 (2015).</p>"
        "<div class='cell_input'><pre>run(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)</pre></div>"
        "<div class='cell_output'><pre>0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 1.1</pre></div>"
        "<details><p>0.1 0.2 0.3 and, typeset, <mjx-container><mjx-mn></mjx-mn><mjx-mo></mjx-mo><mjx-mn></mjx-mn>"
        "<mjx-msub><mjx-mi></mjx-mi><mjx-script><mjx-mn></mjx-mn></mjx-script></mjx-msub></mjx-container></p></details>"
        "</main></body></html>")
    measured = measure_book(html, tmp_path / "_toc.yml", browser)
    assert measured.loc["index.html", "most numbers in a paragraph"] == 11  # the output; the prose has 8
    assert measured.loc["index.html", "dense paragraphs"] == ["0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 1.1"]
    # MathJax's 1/2 counts as two numbers, the subscript of sigma_1 as none
    assert measured.loc["index.html", "most numbers in a collapsed paragraph"] == 5


def test_the_landing_page_answers_within_its_first_screen(measured):
    landing = measured[measured["part"] == "Landing page"]
    assert len(landing) == 1
    assert landing["answer ends at (px)"].iloc[0] is not None, "the landing page has no answer paragraph"
    assert landing["answer ends at (px)"].iloc[0] <= 900


def test_the_report_is_tens_of_screens_not_hundreds(measured):
    from bayesprune.report.readability import screens_per_part

    screens = screens_per_part(measured)
    print(screens.round(1).to_string())
    assert screens[list(MAIN_PARTS)].sum() <= MAIN_SCREENS, screens


def test_no_paragraph_is_a_wall_of_numbers(measured):
    walls = [f"{page} ({row['part']}): {row['most numbers in a paragraph']} numbers in: {row['dense paragraphs']}"
             for page, row in measured.iterrows() if row["most numbers in a paragraph"] > MOST_NUMBERS]
    walls += [f"{page}, collapsed: {row['most numbers in a collapsed paragraph']} numbers in: "
              f"{row['dense collapsed paragraphs']}" for page, row in measured.iterrows()
              if row["most numbers in a collapsed paragraph"] > MOST_NUMBERS]
    assert walls == []


def test_no_table_shows_nan_or_outgrows_its_column(measured):
    """No "nan" in any table, collapsed ones included (the reliability appendix's NaN losses are its point: the
    error a run stopped with); on no page a table wider than the text column (a wider one is a download)."""
    nan = measured[(measured["nan cells"] > 0) & (measured.index != "results/reliability.html")]
    assert nan.empty, nan["nan cells"]
    wide = measured[measured["tables wider than the column"] > 0]
    assert wide.empty, wide["tables wider than the column"]
