# rnnkit: `make demo` and `make test` are the whole set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch lies on local disk; any other spec may pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean fuzz peers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Torch first, so the package's own torch requirement is already satisfied.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/rnnkit demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/pytest

# the HTTP API against its own OpenAPI schema, at length (schemathesis: >= 2,000 generated requests, no 5xx)
fuzz: $(VENV)/.installed-dev
	RNNKIT_FUZZ_EXAMPLES=600 $(BIN)/pytest tests/test_serve_fuzz.py

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/speed.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache

# benchmarks/peers: Darts and NeuralForecast in their own virtualenv (they pull torch and lightning); torch is
# installed first and pinned by a constraints file so that pip never replaces it
PEERS_VENV ?= .venv-peers
$(PEERS_VENV)/.installed: pyproject.toml benchmarks/peers/constraints.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q --upgrade pip
	$(PEERS_VENV)/bin/pip install -q "$(TORCH_SPEC)"
	$(PEERS_VENV)/bin/pip install -q -c benchmarks/peers/constraints.txt -e ".[peers]"
	touch $@

peers: $(PEERS_VENV)/.installed
	$(PEERS_VENV)/bin/python benchmarks/peers/etth1.py
