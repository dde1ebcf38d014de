"""Real trajectories for the export and viewer tests: the collector on a small env."""

from __future__ import annotations

import agentgym
from agentgym.trajectory import Trajectory

agentgym.register("test/Echo-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=2)
agentgym.register("test/Exploding-v0", entry_point="tests.core.fixture_envs:Exploding", max_turns=3)


def collect_mixed(tokenizer, out=None, seeds=(0, 1, 2), group_size=3) -> list[Trajectory]:
    """Trajectories of test/Echo-v0 (successes and failures) and one env_error."""
    from agentgym.policies.scripted import ScriptedPolicy
    from agentgym.rollout.collector import collect

    calls = {"n": 0}

    def answer(messages):
        calls["n"] += 1
        n_assistant = sum(m["role"] == "assistant" for m in messages)
        word = messages[-1]["content"].rstrip(".").split()[-1]
        # Every other call answers right from the second turn: groups get mixed results.
        return word if n_assistant >= 1 and calls["n"] % 2 == 0 else "wrong"

    policy = ScriptedPolicy(answer, tokenizer)
    trajs = collect(policy, "test/Echo-v0", list(seeds), group_size=group_size, progress=False)
    trajs += collect(policy, "test/Exploding-v0", [9], progress=False)
    if out is not None:
        from agentgym.trajectory import write_jsonl

        write_jsonl(out, trajs)
    return trajs
