# Two commands for users: `make run` (the whole pipeline on the embedded default) and `make test`.
# Both create .venv when it is missing and install the pinned dependencies into it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

export HF_HUB_OFFLINE := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup run test lint bench clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt requirements-yolo-sam.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-yolo-sam.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	$(BIN)/hybridwing scores results/score/summary.csv

test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) lint

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf results logs benchmarks .snakemake
