"""Every ``Example:`` in a docstring runs: the docstrings' ``>>>`` lines are doctests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import agentgym

PACKAGES = ["agentgym", "agentgym.envs", "agentgym.policies", "agentgym.sandbox"]
# Modules that need an optional engine this venv does not have (tested elsewhere).
OPTIONAL = {"agentgym.policies.vllm": "vllm"}


def _modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        names.append(pkg)
        for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
            if info.name.split(".")[-1].startswith("_") and info.name != pkg:
                continue  # private modules (the in-sandbox agent is a stdlib-only script)
            names.append(info.name)
    return sorted(set(names))


MODULES = _modules()


def test_every_package_is_walked():
    assert {"agentgym.rl.config", "agentgym.rollout.collector", "agentgym.envs.wordle"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    if name in OPTIONAL and importlib.util.find_spec(OPTIONAL[name]) is None:
        pytest.skip(f"{OPTIONAL[name]} is not installed here")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name, extraglobs={"agentgym": agentgym}) if t.examples]
    failures: list[str] = []
    for test in tests:
        runner.run(test, out=failures.append)
    assert not failures, "".join(failures)
