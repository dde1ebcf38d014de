"""Ray: env workers as actors and policy servers as actors, on a local 2-CPU cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentgym.errors import InfraError
from agentgym.policies.base import Request, SamplingParams
from agentgym.rollout.collector import CollectConfig, Collector
from agentgym.trajectory import read_jsonl
from tests.rollout.hang_envs import HangsOnSeed2, echo_answer

try:
    import ray
except ImportError:  # skipped here; in CI (CI=true), where the extra is installed, it fails
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("ray is not installed: pip install 'agentgym[ray]'", allow_module_level=True)
pytestmark = pytest.mark.xdist_group("ray")  # one local cluster per test worker

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module", autouse=True)
def cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": ROOT, "TOKENIZERS_PARALLELISM": "false"}},
    )
    yield
    ray.shutdown()


def test_env_workers_as_actors_survive_a_hung_env(tiny_tokenizer, tmp_path):
    from agentgym.policies.scripted import ScriptedPolicy

    out = tmp_path / "r.jsonl"
    cfg = CollectConfig(
        env_backend="ray",
        env_workers=2,
        ray_env_cpus=0.5,
        env_step_timeout_s=4.0,
        progress=False,
    )
    policy = ScriptedPolicy(echo_answer, tiny_tokenizer)
    trajs = Collector(policy, cfg).collect(
        "test/RayHang-v0", [0, 1, 2, 3], out=out, env_factory=HangsOnSeed2
    )
    by_seed = {t.seed: t for t in trajs}
    assert by_seed[2].status == "env_error" and "took more than 4 s" in by_seed[2].error
    for s in (0, 1, 3):  # an episode on the killed actor is retried on its replacement
        assert by_seed[s].status == "done" and by_seed[s].success
    assert sorted(t.seed for t in read_jsonl(out)) == [0, 1, 2, 3]


def test_policy_servers_as_actors_with_weight_sync(tiny_model_dir, tiny_policy):
    import torch

    from agentgym.policies.factory import make_policy

    policy = make_policy(f"ray:hf:{tiny_model_dir}#1")
    try:
        cfg = CollectConfig(
            group_size=2,
            sampling=SamplingParams(temperature=1.0, max_new_tokens=4, seed=1),
            progress=False,
        )
        trajs = Collector(policy, cfg).collect("agentgym/FrozenLake-v0", [0, 1], None)
        assert [t.status for t in trajs] != ["infra_error"] * 4
        assert all(t.ledger is not None and any(t.ledger.loss_mask) for t in trajs)

        with torch.no_grad():  # a different model: the served replica must follow it
            for p in tiny_policy.model.parameters():
                p.mul_(-1.5)
        policy.sync_weights(tiny_policy.model, timeout_s=120)
        prompt = Request(prompt_ids=list(trajs[0].ledger.input_ids[:10]))
        greedy = SamplingParams(temperature=0.0, max_new_tokens=6)
        remote = policy.generate([prompt], greedy)[0]
        local = tiny_policy.generate([prompt], greedy)[0]
        assert remote.token_ids == local.token_ids
        with pytest.raises(InfraError, match="did not confirm within"):
            policy.sync_weights(tiny_policy.model, timeout_s=1e-4)
    finally:
        policy.close()
