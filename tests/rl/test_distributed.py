"""Two processes (torchrun, gloo on CPU) make the same update as one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tests.rl.envs  # noqa: F401
from agentgym.policies.base import SamplingParams
from agentgym.policies.hf import HFPolicy
from agentgym.rollout.collector import CollectConfig, Collector

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(Path(__file__).with_name("ddp_update.py"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str]) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


@pytest.mark.slow
def test_two_processes_update_like_one(tiny_model_dir, tmp_path):
    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    cfg = CollectConfig(
        group_size=2, progress=False, sampling=SamplingParams(max_new_tokens=6, seed=5)
    )
    batch = tmp_path / "batch.jsonl"
    trajs = Collector(policy, cfg).collect("test/Spell-v0", [0, 1, 2], out=batch)
    # 3 groups: rank 0 gets 2 (two micro-batches), rank 1 gets 1 (pads with a zero step)
    (tmp_path / "batch.jsonl.adv").write_text(
        json.dumps([1.0, -1.0, 0.5, -0.5, 0.0, 0.0][: len(trajs)])
    )
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    _run([sys.executable, WORKER, str(tiny_model_dir), str(batch), str(one)])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    _run(
        [
            *torchrun,
            "--master-port",
            str(_free_port()),
            WORKER,
            str(tiny_model_dir),
            str(batch),
            str(two),
        ]
    )
    a, b = torch.load(one), torch.load(two)
    assert a["world"] == 1 and b["world"] == 2
    start = policy.model.state_dict()
    moved = max((a["state"][k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-4  # the update did something
    for k in a["state"]:
        assert torch.allclose(a["state"][k], b["state"][k], atol=1e-5, rtol=0), k
    for k in ("loss/policy", "loss/grad_norm", "perf/tokens", "perf/trained_samples"):
        assert b["metrics"][k] == pytest.approx(a["metrics"][k], rel=1e-5, abs=1e-7), k
