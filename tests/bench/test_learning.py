"""GRPO learns, small: bench/learning.py --quick, run as a user would run it.

Runs in a subprocess (the benchmark owns its process: it seeds torch globally)
and checks the benchmark's own last line plus the per-step metrics it wrote:
the greedy "before" is low (the warm start taught the format, not the task),
the greedy "after" on held-out seeds is high, and the *sampled* success rate
rises during GRPO. Two model/sampling seeds, so one lucky seed cannot pass it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^success_before=(?P<before>[\d.]+) success_after=(?P<after>[\d.]+) "
    r"steps=(?P<steps>\d+) seconds=(?P<seconds>[\d.]+)$"
)


def _quick_recipe(tmp_path, recipe):
    """Run ``bench/learning.py --recipe RECIPE --quick`` as a user would; return the match
    of its last line and the run's figures from ``--json-out`` (model, metrics in
    ``tmp_path/run``)."""
    env = dict(os.environ, AGENTGYM_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(ROOT / "bench" / "learning.py"), "--recipe", recipe, "--quick"]
    cmd += ["--no-progress", "--json-out", str(tmp_path / "figures.json")]
    proc = subprocess.run(
        [*cmd, "--out-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = LINE.match(proc.stdout.strip().splitlines()[-1])
    assert m, proc.stdout[-500:]
    return m, json.loads((tmp_path / "figures.json").read_text())[recipe]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_quick_learning_run_raises_success(tmp_path, seed):
    env = dict(os.environ, AGENTGYM_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(ROOT / "bench" / "learning.py"), "--quick", "--no-progress"]
    cmd += ["--seed", str(seed)]
    proc = subprocess.run(
        [*cmd, "--out-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = LINE.match(last)
    assert m, f"unexpected last line: {last!r}"
    assert float(m["before"]) <= 0.2, last  # the warm start taught the format, not the task
    assert float(m["after"]) >= 0.8, last
    rows = [json.loads(x) for x in (tmp_path / "run" / "grpo" / "metrics.jsonl").open()]
    rates = [r["reward/success_rate"] for r in rows if "reward/success_rate" in r]
    assert len(rates) == int(m["steps"])
    first, last5 = rates[0], float(np.mean(rates[-5:]))
    assert first <= 0.15 and last5 >= 0.8, rates
    assert all(r["rollout/env_errors"] == 0 for r in rows if "rollout/env_errors" in r)


@pytest.mark.slow
def test_quick_tools_run_learns_to_call_the_tool_and_answer_with_its_result(tmp_path):
    """bench/learning.py --recipe tools --quick: on held-out tables (codes drawn per task,
    only the tool reveals them) greedy success rises from guessing level to most tasks,
    and the trained policy makes one valid call per episode."""
    m, res = _quick_recipe(tmp_path, "tools")
    assert res["config"]["eval_seeds"] >= 16 and res["config"]["env_id"] == "agentgym/Lookup-v0"
    before, after = float(m["before"]), float(m["after"])
    assert before <= 0.1, m.group(0)  # no better than guessing before training
    assert after >= 0.75 and after > before, m.group(0)
    assert res["tool_calls_per_episode"] == pytest.approx(1.0, abs=0.1), res
    assert res["invalid_rate"] <= 0.05, res
    rows = [json.loads(x) for x in (tmp_path / "run" / "grpo" / "metrics.jsonl").open()]
    found = [r["reward/found_per_turn"] for r in rows if "reward/found_per_turn" in r]
    assert np.mean(found[-5:]) > 2 * np.mean(found[:5]), (
        found
    )  # it learnt to look up the asked item


@pytest.mark.slow
def test_quick_random_maps_run_reads_maps_it_never_trained_on(tmp_path):
    """bench/learning.py --recipe random-maps --quick: a new random 4x4 map per task,
    evaluated greedily on maps no training task showed (held_out="novel"); success
    rises from 0 (the warm start knows the format only) on those unseen maps."""
    m, res = _quick_recipe(tmp_path, "random-maps")
    cfg = res["config"]
    assert cfg["env_kwargs"]["random_map_size"] == 4 and cfg["held_out"] == "novel"
    assert res["held_out_novel"] == 1.0  # every evaluated map is one training never showed
    before, after = float(m["before"]), float(m["after"])
    assert before <= 0.1, m.group(0)
    assert after >= before + 0.25, m.group(0)
    rows = [json.loads(x) for x in (tmp_path / "run" / "grpo" / "metrics.jsonl").open()]
    rates = [r["reward/success_rate"] for r in rows if "reward/success_rate" in r]
    assert np.mean(rates[-5:]) > np.mean(rates[:5]) + 0.15, rates  # sampled success rises too
