# Two entry points for a newcomer: `make verify` (the catalogue) and `make test` (the suite).
# Both create and reuse .venv by themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: verify test test-thorough lint bench report clean venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

venv: $(STAMP)

verify: $(STAMP)
	$(BIN)/gradcheck verify

# ruff (lint and format) and mypy, configured in pyproject.toml; part of `make test`
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) lint
	scripts/ensure-latex.sh || echo "pdflatex could not be installed: the PDF tests will say so" >&2
	$(BIN)/python -m pytest -n 2 -q

test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/gradcheck bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
