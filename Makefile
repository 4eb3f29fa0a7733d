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

.PHONY: setup run test lint docs bench clean

setup: $(STAMP)

# uv installs the lock in seconds; it reads no pip configuration, so it is handed the indexes and
# links pip is configured with (where torch's wheels may be served) and weighs them as pip does.
# Where uv cannot be had or fails, pip installs the same lock. Bytecode is compiled at install, as pip
# does: uv leaves it out, and every job then compiles what it imports (each torch job seconds slower).
UV_SOURCES = $(foreach url,$(shell $(PYTHON) -m pip config get global.extra-index-url 2>/dev/null),--extra-index-url $(url)) \
	$(foreach dir,$(PIP_FIND_LINKS) $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null),--find-links $(dir)) \
	--index-strategy unsafe-best-match
UV_INSTALL = $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(UV_SOURCES)
PIP_INSTALL = $(BIN)/python -m pip install --quiet

$(STAMP): requirements.txt constraints.txt requirements-yolo-sam.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if $(PIP_INSTALL) uv -c constraints.txt && $(UV_INSTALL) -r requirements.txt -c constraints.txt; then \
	  $(UV_INSTALL) --no-deps -r requirements-yolo-sam.txt && $(UV_INSTALL) --no-deps -e .; \
	else \
	  $(PIP_INSTALL) -r requirements.txt -c constraints.txt && $(PIP_INSTALL) --no-deps -r requirements-yolo-sam.txt \
	    && $(PIP_INSTALL) --no-deps -e .; \
	fi
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
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf results logs benchmarks .snakemake
