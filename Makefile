# aiinfra-pipelines: set-up and everyday commands.
# `make demo` and `make test` are the two set-up commands in the README's Quickstart;
# both create .venv from requirements.lock and install the system tools that are missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
STAMP  := $(VENV)/.installed
TOOLS  := .venv-tools
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test ui lock bench clean system-deps checkov torch

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(UV) pip sync -q --python $(BIN)/python requirements.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP) system-deps

# Prometheus (and promtool) from the OS package when missing; Terraform and its provider mirror are checked, not installed.
system-deps:
	@bash scripts/install-system-deps.sh

# checkov lives in its own virtualenv: its pins conflict with Dagster's.
$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --disable-pip-version-check checkov==3.3.30
	touch $@

checkov: $(TOOLS)/.installed

# torch is optional: the reference workload runs on numpy without it. `make test WITH_TORCH=1`
# installs it too, so the torch paths (training, serving, the torch.profiler window) are tested.
# Point pip at a CPU build (e.g. PIP_INDEX_URL=https://download.pytorch.org/whl/cpu) to avoid the CUDA wheels.
torch: $(STAMP)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0

demo: install
	$(BIN)/aiinfra demo --target local

test: install checkov $(if $(WITH_TORCH),torch)
	PATH="$(CURDIR)/$(BIN):$(CURDIR)/$(TOOLS)/bin:$$PATH" $(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

ui: install
	@bash scripts/ui.sh

lock:
	$(UV) pip compile pyproject.toml --extra dev --extra fast --python-version 3.11 --no-header -o requirements.lock

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
