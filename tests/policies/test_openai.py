"""OpenAIPolicy against a real HTTP server (agentgym's PolicyServer on a tiny model)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from agentgym.errors import ConfigError, InfraError, PolicyError
from agentgym.policies.base import Policy, Request, SamplingParams
from agentgym.policies.openai import OpenAIPolicy
from agentgym.policies.server import PolicyServer

MESSAGES = [{"role": "system", "content": "Echo game."}, {"role": "user", "content": "Say apple."}]


@pytest.fixture()
def served(tiny_policy):
    with PolicyServer(tiny_policy, model_name="tiny", port=0) as server:
        yield server


@pytest.fixture()
def client(served, tiny_tokenizer):
    return OpenAIPolicy(served.url, tokenizer=tiny_tokenizer, max_retries=0)


def _prompt(tokenizer, text="Say apple."):
    msgs = [MESSAGES[0], {"role": "user", "content": text}]
    rendered = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return tokenizer(rendered, add_special_tokens=False)["input_ids"]


def _post(url, body):
    req = urllib.request.Request(
        url + "/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_greedy_turns_equal_the_served_policy(client, tiny_policy, tiny_tokenizer):
    assert isinstance(client, Policy) and client.model == "tiny"
    reqs = [Request(_prompt(tiny_tokenizer, t)) for t in ("Say apple.", "No. Say plum.")]
    params = SamplingParams(temperature=0.0, max_new_tokens=8)
    direct = tiny_policy.generate(reqs, params)
    remote = client.generate(reqs, params)
    for d, r in zip(direct, remote, strict=True):
        assert r.token_ids == d.token_ids and r.finish_reason == d.finish_reason
        np.testing.assert_allclose(r.logprobs, d.logprobs, atol=1e-5)


def test_sampled_logprobs_match_a_forward_pass_and_stop_tokens_stay(client, tiny_policy):
    import torch

    prompt = _prompt(client.tokenizer)
    gens = client.generate([Request(prompt)] * 8, SamplingParams(temperature=1.0, seed=3))
    assert len({tuple(g.token_ids) for g in gens}) > 1  # the G copies are not one sample
    for g in gens:
        assert len(g.token_ids) == len(g.logprobs) > 0
        if g.finish_reason == "stop":
            assert g.token_ids[-1] in client.stop_ids
        ids = torch.tensor([prompt + g.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(tiny_policy.model(ids).logits[0, :-1], -1)
        want = logp[len(prompt) - 1 :].gather(-1, ids[0, len(prompt) :, None]).squeeze(-1)
        np.testing.assert_allclose(g.logprobs, want.numpy(), atol=1e-4)


def test_caps_and_seeds(client):
    prompt = _prompt(client.tokenizer)
    params = SamplingParams(temperature=1.0, max_new_tokens=3, seed=7)
    capped, zero = client.generate(
        [Request(prompt), Request(prompt, max_new_tokens=0)],
        params,
    )
    assert len(capped.token_ids) <= 3 and (
        capped.finish_reason == "stop" or len(capped.token_ids) == 3
    )
    assert (zero.token_ids, zero.finish_reason) == ([], "length")
    # A lone seeded request repeats with a fresh client (same seed, same call index).
    fresh = OpenAIPolicy(client.base_url, tokenizer=client.tokenizer)
    again = client.generate([Request(prompt)], SamplingParams(temperature=1.0, seed=11))
    fresh.generate([Request(prompt), Request(prompt, max_new_tokens=0)], params)
    assert fresh.generate([Request(prompt)], SamplingParams(temperature=1.0, seed=11)) == again


def test_collector_rollout_over_http_is_token_exact(client):
    """The ledger holds exactly the ids and logprobs the server returned."""
    import agentgym
    from agentgym.rollout.collector import CollectConfig, Collector

    returned = []

    class Recording:
        tokenizer = client.tokenizer

        def generate(self, requests, params):
            gens = client.generate(requests, params)
            returned.extend((tuple(g.token_ids), tuple(g.logprobs)) for g in gens)
            return gens

    agentgym.register("test/EchoHTTP-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=3)
    config = CollectConfig(group_size=2, sampling=SamplingParams(max_new_tokens=6), progress=False)
    trajs = Collector(Recording(), config).collect("test/EchoHTTP-v0", [0, 1])
    assert len(trajs) == 4 and all(t.status != "infra_error" for t in trajs)
    seen = []
    for t in trajs:
        led = t.ledger
        for s, e in led.turn_spans:
            seen.append((tuple(led.input_ids[s:e]), tuple(led.logprobs[s:e])))
            assert all(led.loss_mask[s:e])
    assert sorted(seen) == sorted(returned)


def test_server_rejects_bad_requests_with_clear_messages(served):
    vocab = served.vocab_size
    cases = [
        ({"prompt": []}, "prompt"),
        ({"prompt": [1, vocab + 5]}, "outside the vocabulary"),
        ({"prompt": [1, 2], "max_tokens": -1}, "max_tokens"),
        ({"prompt": [1, 2], "top_p": 0}, "top_p"),
        ({"prompt": [1, 2], "stream": True}, "stream"),
        ({"prompt": [1, 2], "model": "gpt-9"}, "unknown model"),
        ({"prompt": [1, 2], "logprobs": "yes"}, "logprobs"),
    ]
    for body, needle in cases:
        status, data = _post(served.url, body)
        assert status == 400 and needle in data["error"]["message"], (body, data)
    status, data = _post(served.url, {"prompt": "Say apple.", "max_tokens": 2, "n": 2})
    assert status == 200 and [c["index"] for c in data["choices"]] == [0, 1]
    assert data["usage"]["prompt_tokens"] == 2 * len(
        served.policy.tokenizer("Say apple.", add_special_tokens=False)["input_ids"]
    )
    assert 2 <= data["usage"]["completion_tokens"] <= 4


def test_policy_failure_is_a_500_and_the_server_keeps_serving(tiny_tokenizer):
    from agentgym.policies.base import Generation

    class Flaky:
        tokenizer = tiny_tokenizer
        fail = True

        def generate(self, requests, params):
            if Flaky.fail:
                raise RuntimeError("GPU fell off")
            return [Generation([tiny_tokenizer.eos_token_id], [-0.5], "stop") for _ in requests]

    with PolicyServer(Flaky(), port=0) as server:
        status, data = _post(server.url, {"prompt": [1, 2], "logprobs": 0})
        assert status == 500 and "GPU fell off" in data["error"]["message"]
        client = OpenAIPolicy(server.url, tokenizer=tiny_tokenizer, max_retries=0)
        with pytest.raises(InfraError, match="GPU fell off"):  # 5xx: retried, then InfraError
            client.generate([Request([1, 2])], SamplingParams())
        Flaky.fail = False
        [gen] = client.generate([Request([1, 2])], SamplingParams())
        assert (gen.token_ids, gen.logprobs) == ([tiny_tokenizer.eos_token_id], [-0.5])


def test_unreachable_server_is_an_infra_error_and_the_collector_goes_on(tiny_tokenizer):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    client = OpenAIPolicy(
        f"http://127.0.0.1:{port}/v1", tokenizer=tiny_tokenizer, model="m", max_retries=1
    )
    with pytest.raises(InfraError, match="is it running"):
        client.generate([Request([1, 2])], SamplingParams())

    import agentgym
    from agentgym.rollout.collector import CollectConfig, Collector

    agentgym.register("test/EchoHTTP-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=3)
    trajs = Collector(client, CollectConfig(progress=False)).collect("test/EchoHTTP-v0", [0, 1])
    assert [t.status for t in trajs] == ["infra_error", "infra_error"]


def test_malformed_server_answers_are_policy_errors(tiny_tokenizer):
    answers = {
        "no ids": {"choices": [{"text": "x", "finish_reason": "stop", "logprobs": None}]},
        "count": {
            "choices": [
                {
                    "finish_reason": "length",
                    "token_ids": [5, 6],
                    "logprobs": {"token_logprobs": [-1.0]},
                }
            ]
        },
        "no stop token": {
            "choices": [
                {"finish_reason": "stop", "token_ids": [5], "logprobs": {"token_logprobs": [-1.0]}}
            ]
        },
    }
    current = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            data = json.dumps(current["answer"]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        client = OpenAIPolicy(url, tokenizer=tiny_tokenizer, model="m", max_retries=0)
        for name, needle in [
            ("no ids", "lacks sampled token ids"),
            ("count", "2 token ids"),
            ("no stop token", "without returning the stop token"),
        ]:
            current["answer"] = answers[name]
            with pytest.raises(PolicyError, match=needle):
                client.generate([Request([1, 2])], SamplingParams())
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_bad_client_config_raises():
    with pytest.raises(ConfigError, match="http"):
        OpenAIPolicy("localhost:8000", model="m", tokenizer=object())
    with pytest.raises(ConfigError, match="max_concurrency"):
        OpenAIPolicy("http://x/v1", model="m", tokenizer=object(), max_concurrency=0)


@pytest.mark.slow
def test_agentgym_serve_command_serves_a_model(tiny_model_dir, tiny_tokenizer):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "agentgym.cli", "serve", str(tiny_model_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(1200):  # up to 2 min: a loaded machine imports torch slowly
            try:
                urllib.request.urlopen(url + "/models", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(proc.stdout.read())
                time.sleep(0.1)
        client = OpenAIPolicy(url)  # model id and tokenizer both come from GET /models
        assert client.model == str(tiny_model_dir)
        [gen] = client.generate([Request(_prompt(tiny_tokenizer))], SamplingParams(temperature=0))
        assert gen.token_ids and len(gen.logprobs) == len(gen.token_ids)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_server_never_started_closes_and_frees_its_port(tiny_policy):
    server = PolicyServer(tiny_policy, port=0)
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    server.close()  # must not hang waiting for a serve loop that never ran
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
