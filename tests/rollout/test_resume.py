"""Never lose work: killed runs resume with nothing lost and nothing duplicated."""

import multiprocessing
import os
import random
import signal
import time

import pytest

import agentgym
from agentgym.errors import AgentGymError, ConfigError
from agentgym.rollout.collector import CollectConfig, Collector
from agentgym.rollout.store import read_resumable
from agentgym.trajectory import read_jsonl
from tests.core.fixture_envs import Echo

agentgym.register("test/ResumeEcho-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=3)

SEEDS = list(range(12))
GROUP = 2


class SlowEcho(Echo):
    """Echo with a 10 ms step, so that a run lasts long enough to be killed halfway."""

    def step(self, action):
        time.sleep(0.01)
        return super().step(action)


def _answer(messages):
    """Wrong on the first turn, right after the hint."""
    n = sum(m["role"] == "assistant" for m in messages)
    return messages[-1]["content"].rstrip(".").split()[-1] if n else "wrong"


def _collector(tokenizer):
    from agentgym.policies.scripted import ScriptedPolicy

    cfg = CollectConfig(group_size=GROUP, max_live_episodes=2, env_workers=2, progress=False)
    return Collector(ScriptedPolicy(_answer, tokenizer), cfg)


def _run(tokenizer, out, ready=None):
    collector = _collector(tokenizer)
    if ready is not None:
        ready.set()
    return collector.collect("test/Resume-v0", SEEDS, out=out, env_factory=SlowEcho, resume=True)


def _lines(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _key(t):
    return (t.metadata["task_index"], t.seed, t.sample_index)


def test_sigkill_at_random_points_then_resume_loses_and_duplicates_nothing(
    tiny_tokenizer, tmp_path
):
    reference = _collector(tiny_tokenizer).collect(
        "test/Resume-v0", SEEDS, out=tmp_path / "ref.jsonl", env_factory=SlowEcho
    )
    out = tmp_path / "killed.jsonl"
    ctx = multiprocessing.get_context("fork")  # a warm child: kills land mid-run, not in imports
    rng = random.Random(1234)
    counts = []
    for _ in range(5):
        ready = ctx.Event()
        child = ctx.Process(target=_run, args=(tiny_tokenizer, out, ready))
        child.start()
        assert ready.wait(timeout=60), "the collecting child did not start"
        # kill once it has written 1-4 more lines, then a random instant later
        target = (counts[-1] if counts else 0) + rng.randint(1, 4)
        deadline = time.monotonic() + 60
        while _lines(out) < target and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.015))
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL
        counts.append(len(read_resumable(out)[0]) if out.exists() else 0)
    assert counts == sorted(counts)  # every killed run kept what the earlier ones wrote
    assert 0 < counts[-1] < len(reference), f"the kills missed the run: {counts}"
    final = _run(tiny_tokenizer, out)
    on_disk = read_jsonl(out)
    assert len(on_disk) == len({_key(t) for t in on_disk}) == len(SEEDS) * GROUP
    assert {_key(t) for t in on_disk} == {_key(t) for t in reference}
    by_key = {_key(t): t for t in reference}
    for t in on_disk:
        assert t.to_dict() == by_key[_key(t)].to_dict()
    assert [t.to_dict() for t in final] == [t.to_dict() for t in reference]


class _Counting:
    def __init__(self, inner):
        self.inner, self.tokenizer, self.requests = inner, inner.tokenizer, 0

    def generate(self, requests, params):
        self.requests += len(requests)
        return self.inner.generate(requests, params)


def test_a_torn_last_line_is_dropped_with_a_warning_and_collected_again(tiny_tokenizer, tmp_path):
    from agentgym.policies.scripted import ScriptedPolicy

    out = tmp_path / "r.jsonl"
    cfg = CollectConfig(group_size=2, progress=False)
    full = Collector(ScriptedPolicy(_answer, tiny_tokenizer), cfg).collect(
        "test/ResumeEcho-v0", [0, 1, 2], out=out
    )
    lines = out.read_bytes().splitlines(keepends=True)
    torn = lines[-1][: len(lines[-1]) // 2]  # a kill in the middle of a write
    out.write_bytes(b"".join(lines[:-1]) + torn)
    policy = _Counting(ScriptedPolicy(_answer, tiny_tokenizer))
    with pytest.warns(RuntimeWarning, match="torn last line"):
        again = Collector(policy, cfg).collect(
            "test/ResumeEcho-v0", [0, 1, 2], out=out, resume=True
        )
    assert policy.requests == 2  # only the lost episode ran again (two turns)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in full]
    on_disk = read_jsonl(out)  # the torn bytes are gone, the episode is there once
    assert sorted(_key(t) for t in on_disk) == sorted(_key(t) for t in full)


def test_resume_of_a_complete_file_runs_nothing_and_damage_elsewhere_raises(
    tiny_tokenizer, tmp_path
):
    from agentgym.policies.scripted import ScriptedPolicy

    out = tmp_path / "r.jsonl"
    cfg = CollectConfig(progress=False)
    Collector(ScriptedPolicy(_answer, tiny_tokenizer), cfg).collect(
        "test/ResumeEcho-v0", [0, 1], out=out
    )
    policy = _Counting(ScriptedPolicy(_answer, tiny_tokenizer))
    again = Collector(policy, cfg).collect("test/ResumeEcho-v0", [0, 1], out=out, resume=True)
    assert policy.requests == 0 and len(again) == 2
    more = Collector(policy, cfg).collect("test/ResumeEcho-v0", [0, 1, 2], out=out, resume=True)
    assert len(more) == 3 and len(read_jsonl(out)) == 3
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + "{not json\n" + "".join(lines[1:]))
    with pytest.raises(AgentGymError, match=":2: not a trajectory line"):
        Collector(policy, cfg).collect("test/ResumeEcho-v0", [0, 1], out=out, resume=True)
    with pytest.raises(ConfigError, match="resume"):
        Collector(policy, cfg).collect("test/ResumeEcho-v0", [0], resume=True)


def test_rollout_command_resumes(tiny_model_dir, tmp_path, capsys):
    from agentgym.cli import main

    out = tmp_path / "r.jsonl"
    args = ["rollout", "test/ResumeEcho-v0", "--policy", f"random:apple,pear@{tiny_model_dir}"]
    args += ["--n", "3", "--collect.group-size", "2", "--out", str(out), "--backend", "thread"]
    assert main([*args, "--collect.no-progress"]) == 0
    full = out.read_text().splitlines(keepends=True)
    out.write_text("".join(full[:-2]) + full[-2][:10])  # two lost, one of them torn
    with pytest.warns(RuntimeWarning, match="torn last line"):
        assert main([*args, "--resume"]) == 0
    assert "episodes=6" in capsys.readouterr().out
    again = out.read_text().splitlines()
    assert len(again) == 6 and sorted(again) == sorted(line.rstrip("\n") for line in full)
