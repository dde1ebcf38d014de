"""Episodes apart: hangs end one episode, infra errors are retried, seeds ignore scheduling."""

import os
import threading
import time

import pytest

import agentgym
from agentgym.errors import ConfigError, InfraError
from agentgym.policies.base import Generation
from agentgym.rollout.collector import CollectConfig, Collector
from agentgym.trajectory import read_jsonl
from tests.core.fixture_envs import Echo
from tests.rollout.hang_envs import RELEASE, HangsOnSeed2, echo_answer

agentgym.register("test/AsyncEcho-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=3)


@pytest.fixture(autouse=True)
def _release_hung_threads():
    RELEASE.clear()
    yield
    RELEASE.set()


@pytest.fixture()
def scripted(tiny_tokenizer):
    from agentgym.policies.scripted import ScriptedPolicy

    return ScriptedPolicy(echo_answer, tiny_tokenizer)


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_a_hung_step_ends_its_episode_and_the_others_reach_disk(scripted, tmp_path, backend):
    out = tmp_path / "r.jsonl"
    cfg = CollectConfig(env_backend=backend, env_workers=1, env_step_timeout_s=2.0, progress=False)
    trajs = Collector(scripted, cfg).collect(
        "test/Hang-v0", [0, 1, 2, 3], out=out, env_factory=HangsOnSeed2
    )
    by_seed = {t.seed: t for t in trajs}
    assert by_seed[2].status == "env_error"
    assert "env.step took more than 2 s" in by_seed[2].error
    assert len(by_seed[2].turns) == 1  # the action it hung on is kept
    # With one worker, the others could only go on because the stuck worker was replaced.
    for s in (0, 1, 3):
        assert by_seed[s].status == "done" and by_seed[s].success
    assert sorted(t.seed for t in read_jsonl(out)) == [0, 1, 2, 3]


class WaitsForOthers(Echo):
    """Seed 0 steps only once the three other episodes are on disk."""

    def __init__(self, written: threading.Event):
        super().__init__()
        self.written = written

    def reset(self, *, seed=None, options=None):
        self.slow = seed == 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        if self.slow and not self.written.wait(timeout=20):
            raise RuntimeError("the other episodes waited for this one (lockstep)")
        return super().step(action)


class _CountingFile:
    def __init__(self, n, event):
        self.lines, self.n, self.event = [], n, event

    def write(self, text):
        self.lines.append(text)
        if len(self.lines) >= self.n:
            self.event.set()

    def flush(self):
        pass


def test_episodes_advance_independently(scripted):
    """A slow env holds up only its own episode: the others finish while it waits."""
    written = threading.Event()
    sink = _CountingFile(3, written)
    cfg = CollectConfig(env_workers=2, progress=False)
    trajs = Collector(scripted, cfg).collect(
        "test/Slow-v0", [0, 1, 2, 3], out=sink, env_factory=lambda: WaitsForOthers(written)
    )
    assert [t.status for t in trajs] == ["done"] * 4
    assert [line.count('"seed": 0,') for line in sink.lines][-1] == 1  # seed 0 came last


class _HangsOnce:
    """A policy backend whose first call never answers; later calls work."""

    def __init__(self, inner):
        self.inner, self.tokenizer, self.calls = inner, inner.tokenizer, 0

    def generate(self, requests, params):
        self.calls += 1
        if self.calls == 1:
            RELEASE.wait()
        return self.inner.generate(requests, params)


def test_a_hung_policy_call_is_infra_error_and_the_episode_is_retried(scripted, tmp_path):
    cfg = CollectConfig(generation_timeout_s=1.0, max_retries=1, progress=False)
    (t,) = Collector(_HangsOnce(scripted), cfg).collect("test/AsyncEcho-v0", [4])
    assert t.status == "done" and t.success
    (retry,) = t.metadata["retries"]
    assert retry["status"] == "infra_error" and retry["attempt"] == 0
    assert "generation took more than 1 s" in retry["error"]


class FlakyInfra(Echo):
    """Fails as infrastructure on the first ``fails`` attempts of every task."""

    attempts: dict = {}
    fails = 1

    def reset(self, *, seed=None, options=None):
        self.n = FlakyInfra.attempts[seed] = FlakyInfra.attempts.get(seed, 0) + 1
        return super().reset(seed=seed, options=options)

    def step(self, action):
        if self.n <= FlakyInfra.fails:
            raise InfraError(f"sandbox daemon down (attempt {self.n})")
        return super().step(action)


def test_infra_errors_are_retried_from_the_same_seed_and_recorded(scripted, tmp_path):
    FlakyInfra.attempts, FlakyInfra.fails = {}, 2
    out = tmp_path / "r.jsonl"
    cfg = CollectConfig(group_size=1, max_retries=2, progress=False)
    trajs = Collector(scripted, cfg).collect(
        "test/Flaky-v0", [7, 8], out=out, env_factory=FlakyInfra
    )
    for t in trajs:
        assert t.status == "done" and t.success  # third attempt, same task
        assert [r["attempt"] for r in t.metadata["retries"]] == [0, 1]
        assert all("daemon down" in r["error"] for r in t.metadata["retries"])
    assert FlakyInfra.attempts == {7: 3, 8: 3}
    assert len(read_jsonl(out)) == 2  # one line per episode, the retries inside it

    FlakyInfra.attempts, FlakyInfra.fails = {}, 5
    cfg = CollectConfig(max_retries=1, progress=False)
    (t,) = Collector(scripted, cfg).collect("test/Flaky-v0", [9], env_factory=FlakyInfra)
    assert t.status == "infra_error" and "attempt 2" in t.error
    assert len(t.metadata["retries"]) == 1 and FlakyInfra.attempts == {9: 2}


class _Recording:
    """The tiny HF policy, recording the size of every batch it is handed."""

    def __init__(self, inner):
        self.inner, self.tokenizer, self.batches = inner, inner.tokenizer, []

    def generate(self, requests, params):
        self.batches.append(len(requests))
        return self.inner.generate(requests, params)


def test_seeded_samples_do_not_depend_on_scheduling(tiny_policy):
    """Per-turn seeds: one episode at a time or all batched together, the same samples."""
    from agentgym.policies.base import SamplingParams

    def run(live, workers):
        policy = _Recording(tiny_policy)
        cfg = CollectConfig(
            group_size=2,
            max_live_episodes=live,
            env_workers=workers,
            sampling=SamplingParams(temperature=1.0, max_new_tokens=4, seed=11),
            progress=False,
        )
        trajs = Collector(policy, cfg).collect("test/AsyncEcho-v0", [0, 1])
        return [[turn.action for turn in t.turns] for t in trajs], policy.batches

    one_by_one, batches1 = run(1, 1)
    together, batches6 = run(None, 4)
    assert max(batches1) == 1 and max(batches6) > 1
    assert one_by_one == together
    assert len({str(a) for a in together}) > 1  # the samples of a group differ


class _Concurrent:
    """Takes requests as they come (like an HTTP server): many calls at once."""

    max_concurrency = 4

    def __init__(self, inner):
        self.inner, self.tokenizer = inner, inner.tokenizer
        self.sizes, self.active, self.peak = [], 0, 0
        self.lock = threading.Lock()

    def generate(self, requests, params):
        with self.lock:
            self.sizes.append(len(requests))
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
        return self.inner.generate(requests, params)


def test_servers_get_each_request_as_it_comes(scripted):
    policy = _Concurrent(scripted)
    trajs = Collector(policy, CollectConfig(progress=False)).collect("test/AsyncEcho-v0", range(8))
    assert all(t.status == "done" for t in trajs)
    assert set(policy.sizes) == {1} and 1 < policy.peak <= 4


class _WrongLength:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def generate(self, requests, params):
        return [Generation([], [], "length")]


def test_a_backend_answering_the_wrong_count_is_infra_error(tiny_tokenizer):
    cfg = CollectConfig(max_retries=0, progress=False)
    trajs = Collector(_WrongLength(tiny_tokenizer), cfg).collect("test/AsyncEcho-v0", [0, 1])
    assert [t.status for t in trajs] == ["infra_error"] * 2


def test_timeouts_and_backends_are_validated():
    with pytest.raises(ConfigError, match="env_step_timeout_s"):
        CollectConfig(env_step_timeout_s=0)
    with pytest.raises(ConfigError, match="env_backend"):
        CollectConfig(env_backend="threads")
    with pytest.raises(ConfigError, match="max_retries"):
        CollectConfig(max_retries=-1)


class PidEcho(Echo):
    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "pid": os.getpid()}


def test_worker_processes_are_kept_between_calls(scripted):
    cfg = CollectConfig(env_backend="process", env_workers=1, progress=False)
    with Collector(scripted, cfg) as collector:
        first = collector.collect("test/Pid-v0", [0, 1], env_factory=PidEcho)
        second = collector.collect("test/Pid-v0", [2], env_factory=PidEcho)
        pids = {t.metadata["reset_info"]["pid"] for t in first + second}
        assert len(pids) == 1 and os.getpid() not in pids
        assert all(t.status == "done" for t in first + second)
    assert collector._runner is None  # closed
