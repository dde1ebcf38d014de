"""A trajectories file and a training-run directory, from the real collector."""

from __future__ import annotations

import json

import pytest

from agentgym.rollout.metrics import rollout_metrics
from agentgym.trajectory import Turn, write_jsonl
from tests.data.fixtures import collect_mixed

HOSTILE = "</script><script>document.title='pwned'</script><b>bold?</b>"


@pytest.fixture(scope="module")
def trajs_file(tiny_tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("viewer") / "r.jsonl"
    trajs = collect_mixed(tiny_tokenizer)
    # Text that would break out of the page if it were pasted in as HTML.
    trajs[1].turns.append(Turn(HOSTILE, [{"role": "user", "content": HOSTILE}], 0.0))
    write_jsonl(out, trajs)
    return out


@pytest.fixture(scope="module")
def run_dir(tiny_tokenizer, tmp_path_factory):
    """What `agentgym train` leaves: metrics.jsonl and rollouts/stepNNNNN.jsonl."""
    run = tmp_path_factory.mktemp("run")
    rows = [{"step": 0, "eval/success_rate": 0.25}]
    for step in range(3):
        trajs = collect_mixed(tiny_tokenizer, seeds=(step, step + 1), group_size=4)
        write_jsonl(run / "rollouts" / f"step{step:05d}.jsonl", trajs)
        rows.append({"step": float(step + 1), **rollout_metrics(trajs)})
    rows.append({"step": 3, "eval/success_rate": 0.5})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run
