"""Training against OpenAI-compatible servers: each update's weights reach the server.

A real HTTP server (``agentgym serve``'s :class:`PolicyServer`) serves a copy of the
model directory; ``train(sampler="openai:URL", sync_dir=DIR)`` samples every rollout
from it and, after each update, writes the merged LoRA weights to DIR and asks the
server to reload them (vLLM's dev-mode ``/collective_rpc reload_weights``).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest
import torch

import tests.rl.envs  # noqa: F401
from agentgym.errors import ConfigError
from agentgym.policies.base import SamplingParams
from agentgym.policies.hf import HFPolicy
from agentgym.policies.server import PolicyServer
from agentgym.rl import TrainConfig, train
from agentgym.rl.config import LoraConfig
from agentgym.rollout.collector import CollectConfig


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_lora_training_syncs_merged_weights_to_the_server(tiny_model_dir, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(tiny_model_dir, served)
    initial = HFPolicy.from_pretrained(str(served), device="cpu").model.state_dict()
    server_policy = HFPolicy.from_pretrained(str(served), device="cpu")
    with PolicyServer(server_policy, port=0, model_dir=str(served)) as server:
        cfg = TrainConfig(
            env_id="test/Spell-v0",
            model=str(tiny_model_dir),
            steps=2,
            tasks_per_step=2,
            lr=5e-3,
            lora=LoraConfig(rank=4, alpha=8),
            collect=CollectConfig(group_size=4, sampling=SamplingParams(max_new_tokens=5)),
            sampler=f"openai:{server.url}",
            sync_dir=str(served),
            out_dir=str(tmp_path / "run"),
        )
        result = train(cfg, progress=False)
        assert server.reloads == 2  # once after each update
    final = HFPolicy.from_pretrained(str(tmp_path / "run" / "model"), device="cpu").model
    want = final.state_dict()  # the merged model train() saved at the end
    got = server_policy.model.state_dict()
    assert set(got) == set(want)
    for name, value in got.items():
        torch.testing.assert_close(value, want[name], rtol=0, atol=1e-6, msg=name)
    assert any(not torch.equal(got[k], initial[k]) for k in got if "q_proj" in k)
    # Step 2 sampled from the synced server: its logprobs are the trainer's own.
    assert result.history[1]["logprob/abs_diff_max"] < 1e-3
    assert result.history[1]["perf/trained_samples"] > 0


def test_remote_sampler_needs_a_sync_dir_and_the_server_checks_the_rpc(tiny_model_dir):
    with pytest.raises(ConfigError, match="sync_dir"):
        TrainConfig(sampler="openai:http://127.0.0.1:9/v1")
    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    with PolicyServer(policy, port=0) as server:
        root = server.url.removesuffix("/v1")
        status, body = _post(f"{root}/collective_rpc", {"method": "reload_weights"})
        assert status == 400 and "model directory" in body["error"]["message"]
        status, body = _post(f"{root}/collective_rpc", {"method": "rm_rf"})
        assert status == 400 and "unsupported method" in body["error"]["message"]
        assert _post(f"{root}/reset_prefix_cache", {})[0] == 200
