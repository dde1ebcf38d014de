# agentgym: the two commands of the README.
#   make demo   build .venv, install, run the embedded default model through a rollout
#               and a short GRPO run
#   make test   build .venv, install, set up the sandbox backends (bubblewrap, Docker),
#               lint and type-check, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: help venv system demo test lint bench-learning bench-sandbox clean

help:
	@sed -n '1,6p' Makefile

venv:
	@PYTHON=$(PYTHON) VENV=$(VENV) ./scripts/bootstrap.sh

# System packages and services for the sandbox backends (apt-get when root).
system:
	@if [ -x scripts/setup_system.sh ]; then ./scripts/setup_system.sh; fi

demo: venv
	$(BIN)/agentgym demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy agentgym envs policies sandbox

test: venv system lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

bench-learning: venv
	$(BIN)/python bench/learning.py

bench-sandbox: venv system
	$(BIN)/python bench/sandbox.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache runs
