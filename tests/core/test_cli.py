import io
import json
import subprocess
import sys

import pytest

import agentgym
from agentgym.cli import COMMANDS, main

agentgym.register("test/Echo-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=2)


def test_every_command_has_help(capsys):
    for name in [*COMMANDS, "sandbox"]:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0, name
        text = capsys.readouterr().out
        assert f"usage: agentgym {name}" in text and len(text) > 120, name
    assert main(["--help"]) == 0
    overview = capsys.readouterr().out
    assert all(f"  {n} " in overview for n in COMMANDS)
    out = subprocess.run(
        [sys.executable, "-m", "agentgym.cli", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "--collect.group-size" in out.stdout
    assert "samples per task" in out.stdout


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
            "--collect.group-size",
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
        args = [
            "rollout",
            "test/Echo-v0",
            "--policy",
            spec,
            "--n",
            "2",
            "--collect.group-size",
            "2",
        ]
        assert main([*args, "--collect.sampling.max-new-tokens", "4", "--out", str(out_file)]) == 0
    assert "episodes=4" in capsys.readouterr().out
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == 4 and all(r["status"] != "infra_error" for r in rows)
    assert all(any(r["ledger"]["loss_mask"]) for r in rows)  # sampled tokens came back


def test_errors_are_short_and_actionable(capsys):
    assert main(["play", "test/Ecko-v0"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'test/Echo-v0'" in err
    with pytest.raises(SystemExit):
        main(["rollout", "test/Echo-v0", "--collect.env-kwargs", "{bad"])
    assert "not valid JSON" in capsys.readouterr().err


def test_unknown_command_gets_a_suggestion(capsys):
    assert main(["rollot"]) == 2
    assert "Did you mean 'rollout'" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".json"])
def test_train_config_files_compose_and_flags_override(tmp_path, suffix):
    from agentgym.cli import parse_command

    data = {"steps": 3, "collect": {"group_size": 4, "sampling": {"temperature": 0.5}}}
    path = tmp_path / f"train{suffix}"
    if suffix == ".toml":
        path.write_text(
            "steps = 3\n[collect]\ngroup_size = 4\n[collect.sampling]\ntemperature = 0.5\n"
        )
    elif suffix == ".yaml":
        path.write_text("steps: 3\ncollect:\n  group_size: 4\n  sampling:\n    temperature: 0.5\n")
    else:
        path.write_text(json.dumps(data))
    name, cfg = parse_command(["train", "--config", str(path), "--collect.sampling.top-p", "0.9"])
    assert name == "train" and cfg.steps == 3 and cfg.group_size == 4
    assert cfg.collect.sampling.temperature == 0.5 and cfg.collect.sampling.top_p == 0.9


def test_config_file_with_an_unknown_key_fails_loudly(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"collect": {"group_szie": 4}}))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "group_szie" in err and "did you mean 'group_size'" in err
