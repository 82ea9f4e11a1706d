# retain — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help quickstart test notebook lint format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

quickstart: $(VENV)/.installed ## Set up, then simulate → validate → features → train → ranked list
	$(BIN)/retain quickstart

# the tests also cover the Spark engine (Java 17 must be on PATH)
$(VENV)/.installed-spark: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	touch $@

# Spark's Python workers run the venv's interpreter, not whatever python3 is on PATH
test: $(VENV)/.installed-spark ## Set up, then run the test suite (with the Spark engine)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python -m pytest

$(VENV)/.installed-notebook: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,notebook]"
	touch $@

notebook: $(VENV)/.installed-notebook ## Open notebooks/quickstart.ipynb in JupyterLab
	$(BIN)/jupyter lab notebooks/quickstart.ipynb

lint: $(VENV)/.installed ## Check lint and formatting with ruff
	$(BIN)/ruff check src tests benchmarks features
	$(BIN)/ruff format --check src tests benchmarks features
	$(BIN)/lint-imports

format: $(VENV)/.installed ## Fix lint and format with ruff
	$(BIN)/ruff check --fix src tests benchmarks features
	$(BIN)/ruff format src tests benchmarks features

clean: ## Remove generated data, snapshots, MLflow runs and lists (keeps the venv)
	rm -rf data store quickstart serving/output/*/ mlruns/*.db mlruns/[0-9]* mlruns/models
