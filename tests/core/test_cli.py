import io
import json
import subprocess
import sys

import pytest

import agentgym
from agentgym.cli import build_parser, main

agentgym.register("test/Echo-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=2)


def test_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "usage: agentgym" in text and len(text) > 120, name
    out = subprocess.run(
        [sys.executable, "-m", "agentgym.cli", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "--group-size" in out.stdout and "Samples per task" in out.stdout


def test_play_in_the_terminal(monkeypatch, capsys):
    env = agentgym.make("test/Echo-v0")
    obs, _ = env.reset(seed=4)
    word = obs[-1]["content"].rstrip(".").split()[-1]
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"nope\n{word}\n"))
    assert main(["play", "test/Echo-v0", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "reward -0.100" in out
    assert "Episode terminated: outcome=1.0 success=True" in out


def test_list_shows_registered_envs(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "test/Echo-v0" in out and "outcome, format" in out


def test_rollout_and_view_with_a_random_policy(tiny_model_dir, tmp_path, capsys):
    out_file = tmp_path / "r.jsonl"
    code = main(
        [
            "rollout",
            "test/Echo-v0",
            "--policy",
            f"random:apple,pear,plum,fig@{tiny_model_dir}",
            "--n",
            "3",
            "--group-size",
            "2",
            "--out",
            str(out_file),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "episodes=6" in printed and str(out_file) in printed
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == 6 and {r["sample_index"] for r in rows} == {0, 1}
    assert main(["view", str(out_file), "--index", "1"]) == 0
    shown = capsys.readouterr().out
    assert "=== #1 test/Echo-v0" in shown and "[ASSISTANT]" in shown


def test_rollout_against_an_openai_compatible_server(tiny_model_dir, tmp_path, capsys):
    from agentgym.policies.hf import HFPolicy
    from agentgym.policies.server import PolicyServer

    out_file = tmp_path / "r.jsonl"
    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    with PolicyServer(policy, port=0) as server:
        spec = f"openai:{server.url}@{tiny_model_dir}"
        args = ["rollout", "test/Echo-v0", "--policy", spec, "--n", "2", "--group-size", "2"]
        assert main([*args, "--max-new-tokens", "4", "--out", str(out_file)]) == 0
    assert "episodes=4" in capsys.readouterr().out
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == 4 and all(r["status"] != "infra_error" for r in rows)
    assert all(any(r["ledger"]["loss_mask"]) for r in rows)  # sampled tokens came back


def test_errors_are_short_and_actionable(capsys):
    assert main(["play", "test/Ecko-v0"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'test/Echo-v0'" in err
    with pytest.raises(SystemExit):
        main(["rollout", "test/Echo-v0", "--env-kwargs", "{bad"])
    assert "not valid JSON" in capsys.readouterr().err
