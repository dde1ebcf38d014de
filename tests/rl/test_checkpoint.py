"""Checkpoints: atomic writes, and a SIGKILLed run resumed gives the same metrics."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentgym.rl.checkpoint import latest_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4
# The CLI, with the test env registered first (the subprocess imports it by module).
LAUNCH = [
    sys.executable,
    "-c",
    "import sys, tests.rl.envs; from agentgym.cli import main; sys.exit(main(sys.argv[1:]))",
]


def _config(model_dir, out_dir) -> dict:
    return {
        "model": str(model_dir),
        "env_id": "test/Spell-v0",
        "steps": STEPS,
        "tasks_per_step": 2,
        "collect": {"group_size": 3, "sampling": {"max_new_tokens": 4}},
        "lr": 1e-2,
        "seed": 3,
        "save_model": False,
        "out_dir": str(out_dir),
        "checkpoint": {"every": 1, "keep": 2},
        # adapter dropout draws from torch's global RNG: the resume must restore it
        "lora": {"rank": 4, "alpha": 8, "dropout": 0.1},
        "kl": {"coef": 0.05, "estimator": "k3"},
    }


def _run(args, **kw) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen(
        LAUNCH + args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw
    )


def _steps(path: Path) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in rows]


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out.decode()[-3000:]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tiny_model_dir, tmp_path):
    ref_cfg, cut_cfg = tmp_path / "ref.json", tmp_path / "cut.json"
    ref_cfg.write_text(json.dumps(_config(tiny_model_dir, tmp_path / "ref")))
    cut_cfg.write_text(json.dumps(_config(tiny_model_dir, tmp_path / "cut")))
    _finish(_run(["train", "--config", str(ref_cfg)]))

    rng = random.Random()
    kill_after = rng.randint(1, STEPS - 1)  # metrics lines seen before the kill
    extra_delay = rng.uniform(0.0, 0.3)
    proc = _run(["train", "--config", str(cut_cfg)])
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= kill_after:
            break
        time.sleep(0.05)
    time.sleep(extra_delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    note = f"killed after {kill_after} lines + {extra_delay:.2f}s"
    cut = tmp_path / "cut"
    # a kill after the last metrics line (during the final checkpoint) is a valid point too
    _finish(_run(["train", "--resume", str(cut)]))

    expected, got = _steps(tmp_path / "ref" / "metrics.jsonl"), _steps(metrics)
    assert [r["step"] for r in got] == list(range(1, STEPS + 1)), note
    for a, b in zip(expected, got, strict=True):
        assert a.keys() == b.keys(), note
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-6, abs=1e-7), (note, a["step"], k)
    assert latest_checkpoint(cut).name == f"step-{STEPS:06d}"
    assert not [p for p in (cut / "checkpoints").iterdir() if p.name.startswith(".tmp")]


class _Tiny:
    """The least a checkpoint needs from a trainer."""

    peft_model = None

    def state_dict(self):
        return {"x": 1}


def test_half_written_checkpoint_is_never_the_latest(tmp_path):
    save_checkpoint(tmp_path, 1, _Tiny(), {"metrics_offset": 0})
    save_checkpoint(tmp_path, 2, _Tiny(), {"metrics_offset": 10})
    save_checkpoint(tmp_path, 3, _Tiny(), {"metrics_offset": 20}, keep=2)
    # what a kill during the write of step 4 leaves behind
    (tmp_path / "checkpoints" / ".tmp-step-000004-123").mkdir()
    (tmp_path / "checkpoints" / ".tmp-step-000004-123" / "trainer.pt").write_bytes(b"torn")
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step-000003"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name[0] != ".") == [
        "step-000002",
        "step-000003",
    ]
    assert json.loads((latest / "state.json").read_text())["metrics_offset"] == 20


def test_each_rank_resumes_its_own_rng_streams(tmp_path):
    import torch

    from agentgym.rl.checkpoint import load_checkpoint, rng_state

    class _Loads(_Tiny):
        def load_state_dict(self, state):
            self.loaded = state

    states = []
    for seed in (11, 22):  # what rank 0 and rank 1 hold at the checkpoint
        torch.manual_seed(seed)
        states.append(rng_state())
    path = save_checkpoint(tmp_path, 1, _Tiny(), {"metrics_offset": 0}, rng_states=states)
    draws = {}
    for rank in (0, 1, 2):  # rank 2: a run resumed with more processes than it had
        torch.manual_seed(999)
        load_checkpoint(path, _Loads(), rank=rank)
        draws[rank] = torch.rand(3)
    for rank, seed in ((0, 11), (1, 22)):
        torch.manual_seed(seed)
        assert torch.equal(draws[rank], torch.rand(3)), rank
    assert torch.equal(draws[2], draws[0])  # falls back to rank 0's streams


def test_a_killed_writers_temporary_directory_is_cleared_by_the_next_save(tmp_path):
    torn = tmp_path / "checkpoints" / ".tmp-step-000001-4242"
    torn.mkdir(parents=True)
    (torn / "trainer.pt").write_bytes(b"torn")
    save_checkpoint(tmp_path, 1, _Tiny(), {"metrics_offset": 0})
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000001"]
