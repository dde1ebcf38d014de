import json
import math

import pytest

from agentgym.errors import AgentGymError
from agentgym.trajectory import (
    SCHEMA_VERSION,
    TokenLedger,
    Trajectory,
    Turn,
    read_jsonl,
    write_jsonl,
)


def _sample() -> Trajectory:
    ledger = TokenLedger()
    ledger.add_prompt([1, 2, 3])
    ledger.add_sampled([4, 5], [-0.1, -0.123456789012345])
    ledger.add_prompt([6])
    ledger.add_sampled([7], [-2.5e-9])
    return Trajectory(
        env_id="agentgym/Wordle-v0",
        seed=3,
        options={"word": "crane"},
        group_id="g0",
        sample_index=2,
        initial_observation=[{"role": "system", "content": "Play ünïcode 🎲"}],
        turns=[
            Turn(
                "guess",
                [{"role": "user", "content": "G--Y-"}],
                0.1 + 0.2,
                {"info_gain": 0.3},
                info={"nested": {"a": [1, 2]}},
            ),
            Turn("crane", [], 1.0, {"outcome": 1.0}, terminated=True, finish_reason="length"),
        ],
        ledger=ledger,
        status="done",
        outcome=1.0,
        success=True,
        metadata={"task_index": 0},
    )


def test_ledger_spans_and_validation():
    t = _sample()
    assert t.ledger.turn_spans == [(3, 5), (6, 7)]
    assert t.ledger.loss_mask == [0, 0, 0, 1, 1, 0, 1]
    t.ledger.validate()
    with pytest.raises(AgentGymError, match="logprobs"):
        TokenLedger().add_sampled([1, 2], [0.0])


def test_jsonl_round_trip_is_exact(tmp_path):
    trajs = [_sample(), Trajectory(env_id="e/E-v0", status="env_error", error="boom")]
    path = tmp_path / "t.jsonl"
    assert write_jsonl(path, trajs) == 2
    back = read_jsonl(path)
    assert back == trajs
    assert back[0].turns[0].reward == 0.1 + 0.2  # floats survive bit-exactly
    assert back[0].ledger.logprobs[6] == -2.5e-9
    assert json.loads(path.read_text().splitlines()[0])["schema_version"] == SCHEMA_VERSION


def test_derived_views():
    t = _sample()
    assert [m["role"] for m in t.messages] == ["system", "assistant", "user", "assistant"]
    assert math.isclose(t.total_reward, 1.3)
    assert t.samples() == [t.ledger]


def test_unknown_schema_version_and_bad_lines_are_clear_errors(tmp_path):
    d = _sample().to_dict()
    d["schema_version"] = 99
    with pytest.raises(AgentGymError, match="schema_version 99"):
        Trajectory.from_dict(d)
    p = tmp_path / "bad.jsonl"
    p.write_text(_sample().to_json() + "\n{not json\n")
    with pytest.raises(AgentGymError, match=r"bad.jsonl:2"):
        read_jsonl(p)
