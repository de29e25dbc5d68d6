# Every target bootstraps .venv itself: a fresh machine needs only Python 3.11 and make.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ferry-installed

.PHONY: demo demo-cluster test faults lint bench clean
BENCH_STAMP := $(VENV)/.ferry-bench-installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m scripts.demo

CLUSTER_STAMP := $(VENV)/.ferry-cluster-installed

$(CLUSTER_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,cluster]'
	touch $(CLUSTER_STAMP)

# The sharded bulk DAG on a real CeleryExecutor cluster (two workers) on 127.0.0.1; not a test.
# Installs Debian's redis-server and postgresql with apt-get when they are missing.
demo-cluster: $(CLUSTER_STAMP)
	$(BIN)/python -m scripts.cluster

# The suite includes the fault matrix (tests/faults): its cells run once, and its table is
# printed at the end of the run.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# The fault matrix alone: ferry cp under every fault, against real local stores; prints the table.
faults: $(STAMP)
	$(BIN)/python -m tests.faults

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Benchmarks are not tests: every workload, Ferry and its peers on the same servers in one run,
# one table; writes bench/RESULTS.md and bench/results.png. Installs nginx and aria2 (apt-get)
# when missing. BENCH_ARGS=--quick tries it in a few minutes.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.suite $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .demo .cluster .bench .pytest_cache .pytest-tmp .ruff_cache
