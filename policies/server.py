"""Serve any agentgym policy over vLLM's dialect of the OpenAI completions API.

``agentgym serve MODEL`` (or :class:`PolicyServer` in code) puts a policy, usually an
:class:`~agentgym.policies.hf.HFPolicy`, behind ``POST /v1/completions`` and
``GET /v1/models``, so that :class:`~agentgym.policies.openai.OpenAIPolicy` and other
OpenAI-compatible clients can sample from it: token-id prompts, sampled token ids
back (``return_token_ids`` / ``return_tokens_as_token_ids``), ``logprobs`` of the
distribution each token was drawn from (vLLM's ``processed_logprobs``), and
``stop_token_ids`` kept in the output.

Concurrent requests are gathered for ``batch_window_s`` and sampled in one batched
``generate`` call per (temperature, top_p, stop ids). A ``seed`` makes a request
reproducible when it is sampled alone; in a batch the first request's seed seeds
the whole batch (vLLM keeps one generator per request). Streaming is not supported.

Weight sync (the dialect of vLLM's development endpoints, ``VLLM_SERVER_DEV_MODE=1``):
with ``model_dir`` set (``agentgym serve DIR`` sets it), ``POST /collective_rpc`` with
``{"method": "reload_weights"}`` loads the weights found in ``model_dir`` now into the
served model, between batches; ``POST /reset_prefix_cache`` answers 200 (nothing is
cached). A trainer writes new weights to the directory and asks for the reload, so
``agentgym train --sampler openai:URL --sync-dir DIR`` trains against this server as it
would against vLLM.

With ``token`` set, every request must carry ``Authorization: Bearer TOKEN``
(OpenAIPolicy's ``api_key``); others get a 401 that says nothing more. Binding an
interface other than loopback without a token is refused.

Example:
    >>> from agentgym.policies.hf import HFPolicy
    >>> from agentgym.policies.openai import OpenAIPolicy
    >>> from agentgym.policies.tinymodels import build_tiny_chat_model
    >>> path = build_tiny_chat_model("tiny")
    >>> with PolicyServer(HFPolicy.from_pretrained(path), port=0) as server:
    ...     policy = OpenAIPolicy(server.url, tokenizer=str(path))
    ...     policy.model
    'agentgym'

"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentgym.errors import ConfigError
from agentgym.policies.base import Generation, Policy, Request, SamplingParams
from agentgym.remote.auth import authorized, check_bind
from agentgym.remote.http import QuietJSONHandler, block_until_interrupted, start_threads

__all__ = ["PolicyServer"]


class BadRequest(ValueError):
    """A request the server cannot serve (answered with HTTP 400)."""


@dataclass
class _Job:
    prompt: list[int]
    cap: int
    key: tuple[float, float, tuple[int, ...]]
    seed: int | None
    done: threading.Event = field(default_factory=threading.Event)
    result: Generation | None = None
    error: BaseException | None = None


class PolicyServer:
    """An HTTP server in front of ``policy`` (see the module docstring).

    Args:
        policy: what samples (its ``tokenizer`` decodes the returned text).
        model_name: the id ``/v1/models`` lists and requests may name.
        host: interface to bind.
        port: TCP port; 0 picks a free one (see :attr:`url`).
        batch_window_s: how long the first request of a batch waits for others.
        max_batch: most requests sampled together.
        token: bearer token every request must carry; optional on loopback, required
            on any other ``host`` (see :func:`agentgym.remote.auth.check_bind`).
        model_dir: the directory ``reload_weights`` reads (None: the route answers 400).

    Raises:
        ConfigError: bad batching limits, or a non-loopback ``host`` without a token.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        model_name: str = "agentgym",
        host: str = "127.0.0.1",
        port: int = 8000,
        batch_window_s: float = 0.005,
        max_batch: int = 256,
        token: str | None = None,
        model_dir: str | None = None,
    ) -> None:
        if batch_window_s < 0 or max_batch < 1:
            raise ConfigError(
                f"need batch_window_s >= 0 and max_batch >= 1, got {batch_window_s}, {max_batch}"
            )
        check_bind(host, token)
        self.token = token or None
        self.policy = policy
        self.model_name = model_name
        self.batch_window_s = float(batch_window_s)
        self.max_batch = int(max_batch)
        self.vocab_size = len(policy.tokenizer)
        self.model_dir = model_dir
        self._weights_lock = threading.Lock()  # a reload waits for the batch in flight
        self.reloads = 0
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The API root clients use, e.g. ``http://127.0.0.1:8000/v1``."""
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host}:{port}/v1"

    def start(self) -> PolicyServer:
        """Serve in background threads; returns self."""
        targets = [("batch", self._batch_loop), ("http", self._httpd.serve_forever)]
        self._threads += start_threads(targets, "agentgym-serve")
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (the CLI's mode); Ctrl-C stops and frees the port."""
        self.start()
        block_until_interrupted(self._threads[1], self.close)

    def close(self) -> None:
        """Stop serving and release the port (also when never started)."""
        if self._threads:  # shutdown() waits for a serve_forever loop that must be running
            self._httpd.shutdown()
        self._httpd.server_close()
        self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- batching
    def _batch_loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            jobs = [first]
            deadline = time.monotonic() + self.batch_window_s
            while len(jobs) < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    job = self._jobs.get(timeout=left) if left > 0 else self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)
                    break
                jobs.append(job)
            groups: dict[tuple[float, float, tuple[int, ...]], list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for key, group in groups.items():
                self._run(key, group)

    def _run(self, key: tuple[float, float, tuple[int, ...]], group: list[_Job]) -> None:
        temperature, top_p, stop = key
        seed = next((j.seed for j in group if j.seed is not None), None)
        params = SamplingParams(
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max(1, max(j.cap for j in group)),
            stop_token_ids=stop,
            seed=seed,
        )
        try:
            with self._weights_lock:
                gens = self.policy.generate(
                    [Request(j.prompt, max_new_tokens=j.cap, seed=j.seed) for j in group], params
                )
            for job, gen in zip(group, gens, strict=True):
                job.result = gen
        except BaseException as e:  # the HTTP threads report it; the loop lives on
            for job in group:
                job.error = e
        finally:
            for job in group:
                job.done.set()

    # ---------------------------------------------------------------- weights
    def rpc(self, body: Any) -> dict[str, Any]:
        """Answer ``/collective_rpc``: only ``reload_weights`` (from :attr:`model_dir`)."""
        method = body.get("method") if isinstance(body, dict) else None
        if method != "reload_weights":
            raise BadRequest(f"unsupported method {method!r}; this server has reload_weights")
        self.reload_weights()
        return {"results": [None]}

    def reload_weights(self) -> None:
        """Load the weights in :attr:`model_dir` into the served model, between batches."""
        import torch
        from transformers import AutoModelForCausalLM

        if self.model_dir is None:
            raise BadRequest("reload_weights needs the server started on a model directory")
        model = getattr(self.policy, "model", None)
        if model is None or not hasattr(model, "load_state_dict"):
            raise BadRequest("this policy holds no model whose weights can be reloaded")
        fresh = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=model.dtype)
        with self._weights_lock, torch.no_grad():
            model.load_state_dict(fresh.state_dict())
            self.reloads += 1

    # ---------------------------------------------------------------- protocol
    def complete(self, body: Any) -> dict[str, Any]:
        """Answer one ``/v1/completions`` body (raises :class:`BadRequest`)."""
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        if body.get("stream"):
            raise BadRequest("stream=true is not supported by agentgym serve")
        model = body.get("model", self.model_name)
        if model not in (None, self.model_name):
            raise BadRequest(f"unknown model {model!r}; this server serves {self.model_name!r}")
        prompts = self._prompts(body.get("prompt"))
        n = _int(body, "n", 1, low=1)
        cap = _int(body, "max_tokens", 16, low=0)
        temperature = _float(body, "temperature", 1.0, low=0.0)
        top_p = _float(body, "top_p", 1.0, low=0.0)
        if not 0 < top_p <= 1:
            raise BadRequest(f"top_p must be in (0, 1], got {top_p}")
        logprobs = body.get("logprobs")
        if logprobs is not None and (not isinstance(logprobs, int) or logprobs < 0):
            raise BadRequest(f"logprobs must be a non-negative integer, got {logprobs!r}")
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise BadRequest(f"seed must be an integer, got {seed!r}")
        stop = tuple(sorted(self._ids(body.get("stop_token_ids") or [], "stop_token_ids")))
        key = (temperature, top_p, stop)
        jobs = [
            _Job(p, cap, key, None if seed is None else seed + k) for p in prompts for k in range(n)
        ]
        for job in jobs:
            self._jobs.put(job)
        gens = []
        for job in jobs:
            job.done.wait()
            if job.error is not None:
                raise job.error
            assert job.result is not None
            gens.append(job.result)
        return self._response(body, prompts, n, gens, logprobs is not None)

    def _prompts(self, prompt: Any) -> list[list[int]]:
        if isinstance(prompt, str):
            ids = self.policy.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            prompts = [list(ids)]
        elif isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, list) for p in prompt):
            prompts = prompt
        else:
            raise BadRequest(
                "prompt must be a string, a non-empty list of token ids, or a list of such lists"
            )
        return [self._ids(p, "prompt") for p in prompts]

    def _ids(self, ids: Any, what: str) -> list[int]:
        if not isinstance(ids, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in ids
        ):
            raise BadRequest(f"{what} must be a list of integer token ids")
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise BadRequest(
                f"{what} has ids outside the vocabulary [0, {self.vocab_size}): {bad[:5]}"
            )
        if what == "prompt" and not ids:
            raise BadRequest("prompt must not be empty")
        return ids

    def _response(
        self,
        body: dict[str, Any],
        prompts: list[list[int]],
        n: int,
        gens: list[Generation],
        lp: bool,
    ) -> dict[str, Any]:
        tok = self.policy.tokenizer
        skip = bool(body.get("skip_special_tokens", True))
        as_ids = bool(body.get("return_tokens_as_token_ids", False))
        choices = []
        for index, gen in enumerate(gens):
            choice: dict[str, Any] = {
                "index": index,
                "text": tok.decode(gen.token_ids, skip_special_tokens=skip),
                "finish_reason": gen.finish_reason,
                "logprobs": None,
            }
            if lp:
                tokens = (
                    [f"token_id:{t}" for t in gen.token_ids]
                    if as_ids
                    else tok.convert_ids_to_tokens(gen.token_ids)
                )
                choice["logprobs"] = {
                    "tokens": tokens,
                    "token_logprobs": list(gen.logprobs),
                    "top_logprobs": None,
                    "text_offset": None,
                }
            if body.get("return_token_ids"):
                choice["token_ids"] = list(gen.token_ids)
                choice["prompt_token_ids"] = prompts[index // n]
            choices.append(choice)
        prompt_tokens = sum(len(p) for p in prompts) * n
        completion_tokens = sum(len(g.token_ids) for g in gens)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _int(body: dict[str, Any], key: str, default: int, *, low: int) -> int:
    value = body.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise BadRequest(f"{key} must be an integer >= {low}, got {value!r}")
    return value


def _float(body: dict[str, Any], key: str, default: float, *, low: float) -> float:
    value = body.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low:
        raise BadRequest(f"{key} must be a number >= {low}, got {value!r}")
    return float(value)


def _handler_for(server: PolicyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietJSONHandler):
        protocol_version = "HTTP/1.1"
        timeout = 300  # socket timeout: a stalled client frees its thread

        def _reply(self, status: int, obj: Any) -> None:
            self.send_json(status, json.dumps(obj).encode())

        def _error(self, status: int, message: str, kind: str) -> None:
            self._reply(status, {"error": {"message": message, "type": kind, "code": status}})

        def _authorized(self) -> bool:
            if authorized(self.headers.get("Authorization"), server.token):
                return True
            # Nothing else is said; the unread body rules out reusing the connection.
            self.close_connection = True
            self._error(401, "unauthorized", "Unauthorized")
            return False

        def do_GET(self) -> None:  # noqa: N802
            if not self._authorized():
                return
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                model = {"id": server.model_name, "object": "model", "owned_by": "agentgym"}
                self._reply(200, {"object": "list", "data": [model]})
            elif self.path.rstrip("/") in ("/health", "/v1/health"):
                self._reply(200, {"status": "ok"})
            else:
                self._error(404, f"no route {self.path}; try POST /v1/completions", "NotFound")

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorized():
                return
            route = self.path.rstrip("/")
            answer = {
                "/v1/completions": server.complete,
                "/completions": server.complete,
                "/collective_rpc": server.rpc,
                "/reset_prefix_cache": lambda body: {},
            }.get(route)
            if answer is None:
                self._error(404, f"no route {self.path}; try POST /v1/completions", "NotFound")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self._error(400, "the body is not valid JSON", "BadRequestError")
                return
            try:
                self._reply(200, answer(body))
            except BadRequest as e:
                self._error(400, str(e), "BadRequestError")
            except Exception as e:  # the policy failed: report it, keep serving
                self._error(500, f"{type(e).__name__}: {e}", "InternalServerError")

    return Handler
