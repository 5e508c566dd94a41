# miscreen: every target bootstraps .venv (pinned by requirements.lock) when missing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.miscreen-installed
CONFIG ?= configs/default.yaml

# Offline mirror of the upstream data files: ../shared/data when it exists.
ifneq ($(wildcard ../shared/data),)
export MISCREEN_MIRROR ?= $(abspath ../shared/data)
endif

.DEFAULT_GOAL := help
.PHONY: help install screen test lint bench bench-obelix lgps lgps-family md-lgps md-validation clean

help: ## List every target
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH, or set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Create .venv with the pinned dependencies (the MD extra, CPU torch, included) and miscreen

screen: $(STAMP) ## Run the whole pipeline on CONFIG (default configs/default.yaml)
	$(VENV)/bin/miscreen run $(CONFIG)

test: $(STAMP) ## Run the layer contract (lint-imports), then the test suite
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

lint: $(STAMP) ## ruff check, format check, private-name imports (PLC2701) and the import contracts
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff check --preview --select PLC2701 src
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports

bench: $(STAMP) ## Speed/accuracy benchmarks (writes results/bench/)
	@for b in benchmarks/*.py; do [ $$b = benchmarks/md_validation.py ] && continue; echo "== $$b"; $(PY) $$b || exit 1; done

md-validation: $(STAMP) ## The MD validation set: LGPS and five OBELiX materials per potential (results/bench/md_validation.json; hours: use a cluster)
	$(PY) benchmarks/md_validation.py

bench-obelix: $(STAMP) ## The OBELiX model benchmark (results/benchmark-obelix/)
	$(VENV)/bin/miscreen benchmark obelix

lgps: $(STAMP) ## The LGPS rediscovery case study (results/lgps/)
	$(VENV)/bin/miscreen case lgps

lgps-family: $(STAMP) ## The LGPS family generated from its parent: hull, sigma, BVSE (results/lgps-family/, SevenNet-0: 10-35 min)
	$(VENV)/bin/miscreen case lgps-family

md-lgps: $(STAMP) ## MD of LGPS vs gamma-Li3PO4 at the measured cell, quick protocol (results/md-lgps/, about 60-90 min)
	$(VENV)/bin/miscreen case md-lgps

clean: ## Remove results, trained models and caches (keeps .venv)
	rm -rf results models/*/ .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
