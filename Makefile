# SLT Course: two commands.
#   make course   install into .venv (idempotent) and open the course in JupyterLab
#   make test     install into .venv (idempotent) and run the whole test suite
#   make site     install into .venv (idempotent) and build the course website into _build/site
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The install stamp is named after the content of pyproject.toml (not its mtime: a fresh `git clone`
# gives files arbitrary times), so the venv is re-installed exactly when the pins change.
PINS_HASH := $(shell { sha256sum pyproject.toml 2>/dev/null || shasum -a 256 pyproject.toml; } | cut -c1-16)
STAMP  := $(VENV)/.installed-$(PINS_HASH)
FIRST_PAGE := chapters/00_bayesian_learning.ipynb
# Tests run on both cores; set PYTEST_WORKERS=0 to run in one process.
PYTEST_WORKERS ?= 2

.PHONY: course test install lint exercises execute site clean help browser sandbox bench bench-devinterp2

help:
	@echo "make course     install (first time only) and open the course in JupyterLab"
	@echo "make test       install (first time only) and run all tests"
	@echo "make site       build the course website (offline) into _build/site"
	@echo "make exercises  regenerate exercises/ from solutions/"
	@echo "make execute    re-execute chapters/ and solutions/ in place (authors)"

install: $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (SLT Course)" >/dev/null
	rm -f $(VENV)/.installed*
	touch $(STAMP)

course: $(STAMP)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(FIRST_PAGE)

# tests/test_site.py opens the course website in headless Chromium (Debian's package):
# installed here when missing and we are root with apt-get; otherwise those tests say how.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing chromium for the website tests (apt-get)"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium; the browser tests will be skipped"; \
	    else echo "chromium not found: install Debian's 'chromium' package to run the browser tests"; fi; }

# The autograder runs student code in a bubblewrap sandbox (Debian's package; docs/INSTRUCTORS.md):
# installed here when missing and we are root with apt-get; otherwise the grader's tests say how.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing bubblewrap for the autograder (apt-get)"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
	      || echo "could not install bubblewrap; the sandbox tests will be skipped (the grader refuses without --unsafe)"; \
	    else echo "bwrap not found: install Debian's 'bubblewrap' package to run the sandbox tests"; fi; }

test: $(STAMP) browser sandbox
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope

lint: $(STAMP)
	$(BIN)/ruff check slt_course_utils tests chapters solutions benchmarks docs

exercises: $(STAMP)
	$(BIN)/python -m slt_course_utils.make_exercises

site: $(STAMP)
	$(BIN)/python docs/site/build.py

execute: $(STAMP)
	$(BIN)/python -m slt_course_utils.execute_notebooks chapters solutions

# Benchmarks (scripts, not tests): the LLC estimator against devinterp 1.3.2 and 2.x.
bench:
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -e ".[bench]"
	.venv-bench/bin/python benchmarks/llc_vs_devinterp.py

bench-devinterp2:
	test -x .venv-devinterp2/bin/python || $(PYTHON) -m venv .venv-devinterp2
	.venv-devinterp2/bin/python -m pip install --quiet -e . devinterp==2.0.1
	cd benchmarks && ../.venv-devinterp2/bin/python llc_vs_devinterp2.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache _build test-artifacts
