"""`agentgym serve` (PolicyServer): the bearer token and the binding rule."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from agentgym.errors import ConfigError, PolicyError

TOKEN = "correct-horse-battery"


@pytest.fixture(scope="module")
def hf_policy(tiny_model_dir):
    from agentgym.policies.hf import HFPolicy

    return HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")


def _status(url, token=None, body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_policy_server_checks_the_token(hf_policy, tiny_model_dir):
    from agentgym.policies.base import Request, SamplingParams
    from agentgym.policies.openai import OpenAIPolicy
    from agentgym.policies.server import PolicyServer

    with PolicyServer(hf_policy, port=0, token=TOKEN) as server:
        nothing = {"error": {"message": "unauthorized", "type": "Unauthorized", "code": 401}}
        assert _status(server.url + "/models") == (401, nothing)
        assert _status(server.url + "/nope", token="wrong-token") == (401, nothing)
        assert _status(server.url + "/completions", body={"prompt": [1]}) == (401, nothing)
        assert _status(server.url + "/models", token=TOKEN)[0] == 200

        ids = hf_policy.tokenizer("Say apple.", add_special_tokens=False)["input_ids"]
        params = SamplingParams(max_new_tokens=3, seed=0)
        good = OpenAIPolicy(server.url, tokenizer=str(tiny_model_dir), api_key=TOKEN)
        assert len(good.generate([Request(ids)], params)[0].token_ids) >= 1
        with pytest.raises(PolicyError, match="HTTP 401"):  # the client checks /models first
            OpenAIPolicy(server.url, tokenizer=str(tiny_model_dir), api_key="wrong-token")


def test_policy_server_refuses_public_interface_without_token(hf_policy):
    from agentgym.policies.server import PolicyServer

    with pytest.raises(ConfigError, match="without a bearer token"):
        PolicyServer(hf_policy, host="0.0.0.0", port=0)
    PolicyServer(hf_policy, host="0.0.0.0", port=0, token=TOKEN).close()


def test_cli_serve_refuses_public_interface_before_loading(monkeypatch, capsys):
    from agentgym.cli import main

    monkeypatch.delenv("AGENTGYM_TOKEN", raising=False)
    assert main(["serve", "no/such-model", "--host", "0.0.0.0"]) == 2
    assert "without a bearer token" in capsys.readouterr().err
