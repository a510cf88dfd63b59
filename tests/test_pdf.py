"""The report as one PDF: every page of the built smoke book, in the table of contents' order, with its figures."""

import html
import re

import pytest

from bayesprune.report.chapters import BOOK
from bayesprune.report.pdf import page_order, print_book

pytestmark = pytest.mark.browser

HTML = BOOK / "_build" / "html"


def test_pages_follow_the_table_of_contents():
    pages = [str(p.relative_to(HTML)) for p in page_order(BOOK / "_toc.yml", HTML)]
    assert pages[:3] == ["results/summary.html", "results/claims.html", "results/audit.html"]  # the answer, then the claims
    assert pages.index("discussion.html") < pages.index("methods.html") < pages.index("results/reproducibility.html") \
        < pages.index("runs.html")  # the report, then its appendices
    assert any(p.startswith("runs/") for p in pages)


def test_the_pdf_holds_every_page_and_every_figure(tmp_path):
    import pypdf

    pages = page_order(BOOK / "_toc.yml", HTML)
    target = print_book(HTML, BOOK / "_toc.yml", tmp_path / "report.pdf")
    reader = pypdf.PdfReader(target)
    assert len(reader.pages) >= len(pages)
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    for page in pages:
        title = html.unescape(re.search(r"<title>(.*?)</title>", page.read_text()).group(1)).split(" — ")[0]
        assert " ".join(title.split()[:3]) in text, page
    parts = [item.title for item in reader.outline if not isinstance(item, list)]
    assert parts[:3] == ["Landing page", "Report", "Appendices"]  # a bookmark per part, a page's under its part
    assert any(isinstance(item, list) and len(item) >= 5 for item in reader.outline)
    figures = sum(len(re.findall(r'<img [^>]*src="[^"]*\.png"', page.read_text())) for page in pages)
    assert sum(len(page.images) for page in reader.pages) >= figures > 10
