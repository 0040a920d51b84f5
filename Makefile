# actlab: `make quickstart` runs the quickstart study and writes its report;
# `make test` runs the test suite. Both set everything up first (idempotent); the
# environment includes the optional extras (Ray, TensorBoard, MLflow) for their tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# The CPU build of torch 2.13.0 lies in /opt/wheels on our machines; elsewhere pip's own
# configuration decides where it comes from.
TORCH_SOURCE := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: setup data browser quickstart test test-fast lint bench clean

setup: $(VENV)/.installed data

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_SOURCE) torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_SOURCE) \
	  -e ".[dev,ray,tensorboard,mlflow]" torch==2.13.0
	touch $@

data:
	@if [ ! -f $(FASHION) ]; then \
	  echo "installing Fashion-MNIST (Debian package dataset-fashion-mnist)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	fi

# Headless Chromium for the report's browser test (Debian package `chromium`).
browser:
	@if ! command -v chromium >/dev/null; then \
	  echo "installing chromium (Debian package, for the report's browser test)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; \
	fi

quickstart: setup
	$(BIN)/actlab run studies/quickstart.yaml --report

# pytest-xdist runs one worker per core and hands out whole test modules, the longest
# first (tests/conftest.py); measured in the closing note of issue 20.
test: setup browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n auto --dist loadscope

# Everything not marked slow: for the edit-test loop (make test is what CI runs).
test-fast: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n auto --dist loadscope -m "not slow"

lint: setup
	$(BIN)/ruff check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/input_pipeline.py

clean:
	rm -rf $(VENV) results
