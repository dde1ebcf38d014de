"""Several OpenAI-compatible servers: sticky sessions, and weight sync that fails loudly."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import agentgym
from agentgym.errors import InfraError, PolicyError
from agentgym.policies.base import SamplingParams
from agentgym.policies.factory import make_policy
from agentgym.policies.openai import OpenAIPolicy
from agentgym.policies.server import PolicyServer
from agentgym.rollout import CollectConfig, Collector

agentgym.register("test/RouteEcho-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=3)


class _Seen:
    """The served policy, recording every prompt it is asked to continue."""

    def __init__(self, inner):
        self.inner, self.tokenizer, self.model = inner, inner.tokenizer, inner.model
        self.prompts: list[tuple[int, ...]] = []

    def generate(self, requests, params):
        self.prompts += [tuple(r.prompt_ids) for r in requests]
        return self.inner.generate(requests, params)


def test_each_episode_sticks_to_one_server(tiny_policy, tiny_model_dir):
    seen = [_Seen(tiny_policy), _Seen(tiny_policy)]
    with PolicyServer(seen[0], port=0) as a, PolicyServer(seen[1], port=0) as b:
        policy = make_policy(f"openai:{a.url},{b.url}@{tiny_model_dir}")
        assert isinstance(policy, OpenAIPolicy) and policy.base_urls == [a.url, b.url]
        cfg = CollectConfig(
            group_size=2,
            sampling=SamplingParams(temperature=1.0, max_new_tokens=4, seed=5),
            progress=False,
        )
        trajs = Collector(policy, cfg).collect("test/RouteEcho-v0", range(6))
    assert all(t.status != "infra_error" for t in trajs)
    assert all(s.prompts for s in seen)  # both servers worked
    turns = [[tuple(t.ledger.input_ids[:a]) for a, _ in t.ledger.turn_spans] for t in trajs]
    shared = {p for ps in turns for p in ps if sum(p in qs for qs in turns) > 1}
    traced = 0
    for prompts in turns:  # the G copies of a task share their first prompt: skip those
        own = [p for p in prompts if p not in shared]
        homes = {i for i, s in enumerate(seen) for p in own if p in s.prompts}
        assert len(homes) == (1 if own else 0), homes  # every turn on the same server
        traced += len(own) > 1
    assert traced >= 4


class _Admin(BaseHTTPRequestHandler):
    """vLLM's development endpoints, as far as weight sync uses them."""

    calls: list[str] = []
    delay_s = 0.0
    status = 200

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(f"{self.path} {body.get('method', '')}".strip())
        time.sleep(type(self).delay_s)
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"detail": "Not Found"}' if type(self).status == 404 else b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture()
def admin():
    _Admin.calls, _Admin.delay_s, _Admin.status = [], 0.0, 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Model:
    def __init__(self):
        self.saved = []

    def save_pretrained(self, path):
        self.saved.append(path)


def test_weight_sync_saves_reloads_and_resets_the_prefix_cache(admin, tiny_tokenizer, tmp_path):
    policy = OpenAIPolicy([admin + "/v1", admin + "/v1"], tokenizer=tiny_tokenizer, model="m")
    model = _Model()
    policy.sync_weights(model, str(tmp_path), timeout_s=5)
    assert model.saved == [str(tmp_path)]
    assert sorted(_Admin.calls) == sorted(
        ["/collective_rpc reload_weights", "/reset_prefix_cache"] * 2
    )


def test_weight_sync_fails_loudly_on_a_hang_or_a_server_without_the_endpoints(
    admin, tiny_tokenizer
):
    policy = OpenAIPolicy(admin + "/v1", tokenizer=tiny_tokenizer, model="m")
    _Admin.delay_s = 3.0
    start = time.monotonic()
    with pytest.raises(InfraError, match="did not confirm reload_weights within 0.5 s"):
        policy.sync_weights(timeout_s=0.5)
    assert time.monotonic() - start < 2.9  # gave up at its timeout, not at the server's pace
    _Admin.delay_s, _Admin.status = 0.0, 404
    with pytest.raises(PolicyError, match="VLLM_SERVER_DEV_MODE=1"):
        policy.sync_weights(timeout_s=5)
