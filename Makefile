# Every target uses the virtual environment in .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0

.PHONY: test-containers test-resume bench-preprocess test-spark help install system-deps demo test lint format compile check-components bench bench-local-runner bench-training bench-scheduler bench-serving clean tools check-infra infra-docs

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
	# scheduler: PostgreSQL for the replicated store's tests (started by the tests on loopback)
	@test -x /usr/lib/postgresql/15/bin/initdb || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15)

demo: $(STAMP)
	$(BIN)/kubeforge demo

test: $(STAMP) system-deps check-infra
	$(BIN)/pytest -m "not infra and not resume"

# training that resumes: the component SIGKILLed mid-run and retried, SIGTERM to a running job (a few minutes)
test-resume: $(STAMP) system-deps
	$(BIN)/pytest -m resume tests/components/training

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

bench: bench-local-runner bench-training bench-scheduler bench-serving bench-preprocess

bench-training: $(STAMP)
	$(BIN)/python benchmarks/training.py

bench-local-runner: $(STAMP)
	$(BIN)/python benchmarks/local_runner.py

# scheduler: kubeforge's queue against SLURM on this machine (SLURM started by the harness)
bench-scheduler: $(STAMP) system-deps
	$(BIN)/python benchmarks/scheduler.py

# serving: kubeforge's model server against KServe's ModelServer and FastAPI, each peer in its own
# virtualenv under .bench/ (kserve needs pandas<3); torch pinned first to avoid a CUDA download
BENCH_VENVS := .bench
$(BENCH_VENVS)/kserve-venv/.installed:
	$(PYTHON) -m venv $(BENCH_VENVS)/kserve-venv
	$(BENCH_VENVS)/kserve-venv/bin/pip install --quiet torch==$(TORCH_VERSION)
	$(BENCH_VENVS)/kserve-venv/bin/pip install --quiet kserve
	touch $@

$(BENCH_VENVS)/fastapi-venv/.installed:
	$(PYTHON) -m venv $(BENCH_VENVS)/fastapi-venv
	$(BENCH_VENVS)/fastapi-venv/bin/pip install --quiet torch==$(TORCH_VERSION)
	$(BENCH_VENVS)/fastapi-venv/bin/pip install --quiet fastapi "uvicorn[standard]" numpy "pandas<3"
	touch $@

bench-serving: $(STAMP) $(BENCH_VENVS)/kserve-venv/.installed $(BENCH_VENVS)/fastapi-venv/.installed
	$(BIN)/python benchmarks/serving.py

# infra: terraform 1.0.3, helm and checkov (own venv) into .tools/, idempotent; npm from Debian when missing
tools:
	@command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	PYTHON=$(PYTHON) bash scripts/install_infra_tools.sh

# infra: fmt, structure, checkov, helm lint/template/validate, `kubeforge infra` end to end, and the
# eks module applied and destroyed against moto with the real AWS provider (skipped without its mirror)
check-infra: $(STAMP) tools
	.tools/bin/terraform fmt -check -recursive terraform
	$(BIN)/python scripts/check_terraform.py
	$(BIN)/pytest -m infra tests/infra

infra-docs: $(STAMP)
	$(BIN)/python scripts/check_terraform.py --write-docs

# containers (issue 7): podman + a debootstrap'd bookworm base + the kubeforge image (all under
# .containers/), then tabular_classifier run in the image through kfp.local's DockerRunner. Slow
# (first run builds everything); not part of `make test`. Run it before resolving image changes.
test-containers: $(STAMP)
	$(BIN)/python -c "import docker" 2>/dev/null || $(BIN)/pip install --quiet "docker>=7"
	@set -e; env_lines="$$(bash scripts/container_lane.sh)"; \
	  env $$env_lines $(BIN)/pytest -m containers tests/containers

clean:
	rm -rf $(VENV) build dist *.egg-info .kubeforge local_outputs .mypy_cache .ruff_cache .pytest_cache

# preprocess: the duckdb engine against pandas + scikit-learn on 10M x 20 generated rows (kept in .bench/preprocess/)
bench-preprocess: $(STAMP)
	$(BIN)/python benchmarks/preprocess.py

# preprocess: only the Spark backend's lane (pyspark on local[*], Java 17); it also runs in `make test`
test-spark: $(STAMP)
	$(BIN)/pytest -m spark tests/components/preprocess
