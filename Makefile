# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
# checkov pins boto3 and packaging to versions of its own: kept apart from the project's venv.
TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-checkov
CHECKOV_VERSION ?= 3.3.30

.PHONY: demo test lint format typecheck unit integration container bench base-image clean

# The local base image the container tests build on (no registry is reachable in CI): Debian 12 minbase,
# as public.ecr.aws/docker/library/debian:bookworm-slim is. Made once per Docker engine, then reused.
BASE_IMAGE ?= filefleet-base:bookworm
DEBIAN_MIRROR ?= http://deb.debian.org/debian

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "filefleet needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(DEMO_STAMP)

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $@

$(DEMO_STAMP): pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[demo]'
	@touch $@

demo: $(DEMO_STAMP)  ## the pipeline end to end on this machine: embedded S3/SQS, local embedder and index
	$(PY) -m app demo

test: $(STAMP) $(TOOLS_STAMP) lint typecheck  ## everything CI runs
	CHECKOV=$(abspath $(TOOLS_VENV))/bin/checkov $(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

container: $(STAMP)
	$(PY) -m pytest tests/container

base-image:
	@if docker image inspect $(BASE_IMAGE) >/dev/null 2>&1; then echo "$(BASE_IMAGE) is there"; else \
		rootfs=$$(mktemp -d) && debootstrap --variant=minbase bookworm "$$rootfs" $(DEBIAN_MIRROR) >/dev/null && \
		tar -C "$$rootfs" -c . | docker import - $(BASE_IMAGE) && rm -rf "$$rootfs"; fi

bench: $(STAMP)  ## the worker throughput benchmark (installs fauxqs with npm into benchmarks/.cache)
	$(PY) benchmarks/sqs_throughput.py

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis benchmarks/.cache
