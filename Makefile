PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gdbench run studies/quickstart.toml --jobs 2

# Optimizers and schedules run under every Keras backend. Keras picks its
# backend once per process, so these tests run again in a process per backend:
# JAX always (a dev dependency), PyTorch where torch is importable.
BACKEND_TESTS := tests/test_optimizers_reference.py tests/test_optimizers_keras.py \
	tests/test_schedules.py tests/test_optimizer_rules_broadcast.py \
	tests/test_optimizers_validation.py tests/test_precision.py tests/test_optimizers_registration.py

# Test files run in parallel, on this many worker processes (pytest-xdist), a file's
# tests on one worker.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST)
	@if $(BIN)/python -c "import torch" 2>/dev/null; then \
		KERAS_BACKEND=torch $(PYTEST) $(BACKEND_TESTS); \
	else \
		echo "PyTorch backend tests skipped: torch is not importable (PyPI's torch brings CUDA; pip install torch==2.13.0 for a CPU build)"; \
	fi
	KERAS_BACKEND=jax $(PYTEST) $(BACKEND_TESTS)
