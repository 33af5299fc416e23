# Every target uses the virtual environment in .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0

.PHONY: help install system-deps demo test lint format compile check-components bench bench-local-runner bench-training clean

help:
	@echo "make demo     run the tabular_classifier pipeline end to end on real data"
	@echo "make test     install what the tests need and run them"
	@echo "make lint     ruff + mypy"
	@echo "make compile  regenerate component.yaml files, READMEs and the golden pipeline YAML"

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# System packages that tests start as real services (SLURM and munge), installed when missing.
system-deps:
	@command -v slurmctld >/dev/null && command -v munged >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge)

demo: $(STAMP)
	$(BIN)/kubeforge demo

test: $(STAMP) system-deps
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

compile: $(STAMP)
	$(BIN)/python scripts/compile_components.py

check-components: $(STAMP)
	$(BIN)/python scripts/compile_components.py --check

bench: bench-local-runner bench-training

bench-training: $(STAMP)
	$(BIN)/python benchmarks/training.py

bench-local-runner: $(STAMP)
	$(BIN)/python benchmarks/local_runner.py

clean:
	rm -rf $(VENV) build dist *.egg-info .kubeforge local_outputs .mypy_cache .ruff_cache .pytest_cache
