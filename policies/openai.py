"""A policy behind an OpenAI-compatible completions server (vLLM, ``agentgym serve``).

:class:`OpenAIPolicy` keeps the TITO rule over HTTP: it sends the prompt as token
ids to ``POST {base_url}/completions`` and takes the sampled token ids back, never
text. The server must speak vLLM's dialect of the completions API:

- ``prompt`` may be a list of token ids;
- ``return_token_ids: true`` adds the sampled ids to each choice as ``token_ids``,
  or ``return_tokens_as_token_ids: true`` makes ``logprobs.tokens`` read
  ``"token_id:<id>"`` (both are asked for; either is enough);
- ``logprobs: 0`` returns ``logprobs.token_logprobs``, one per sampled token;
- ``stop_token_ids`` ends the turn at those ids, which stay in the output.

``vllm serve MODEL --logprobs-mode processed_logprobs`` meets this (without that flag
vLLM reports logprobs *before* temperature, which the trainer's ratios do not
expect unless the temperature is 1); so does ``agentgym serve MODEL``.

Requests of one ``generate`` call go out concurrently (``max_concurrency`` at a
time) so that the server can batch them; the collector sends each request as soon as
its episode is ready (it reads ``max_concurrency``).

Several servers (``base_url`` a list, or ``openai:URL1,URL2`` on the command line):
every turn of an episode (``Request.session_id``) goes to the same server, so its
prefix cache holds the conversation; new sessions go to the server with the fewest
requests in flight. A server that stops answering unpins its sessions, so a retried
episode may land elsewhere.

Weights: :meth:`OpenAIPolicy.sync_weights` makes remote vLLM servers load new weights
(see there); it fails loudly, with :class:`~agentgym.errors.InfraError`, when a
server does not answer in time. Connection failures and 5xx/429 replies
are retried with backoff; when the retries run out, :class:`~agentgym.errors.
InfraError` is raised (the collector marks those episodes ``infra_error`` and goes
on). A 4xx reply or a malformed answer raises :class:`~agentgym.errors.PolicyError`
with the server's message.

Example:
    >>> from agentgym.policies.base import Request, SamplingParams
    >>> from agentgym.policies.hf import HFPolicy
    >>> from agentgym.policies.server import PolicyServer
    >>> from agentgym.policies.tinymodels import build_tiny_chat_model
    >>> path = build_tiny_chat_model("tiny")
    >>> with PolicyServer(HFPolicy.from_pretrained(path), port=0) as server:
    ...     policy = OpenAIPolicy(server.url, tokenizer=str(path))
    ...     params = SamplingParams(temperature=1.0, max_new_tokens=4)
    ...     [gen] = policy.generate([Request(prompt_ids=[1, 2, 3])], params)
    >>> 1 <= len(gen.token_ids) <= 4
    True
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentgym.errors import ConfigError, InfraError, PolicyError
from agentgym.policies.base import (
    Generation,
    Request,
    SamplingParams,
    check_prompts,
    request_cap,
    request_seed,
    sampled_generation,
    stop_token_ids,
)

__all__ = ["OpenAIPolicy"]

_RETRY_STATUS = {429, 500, 502, 503, 504}
_TOKEN_PREFIX = "token_id:"


class OpenAIPolicy:
    """Sample turns from an OpenAI-compatible completions server (see the module docstring).

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``, or a list of them
            (one per server; sessions stick to one).
        tokenizer: the served model's tokenizer (an object, or a path/name for
            ``AutoTokenizer.from_pretrained``); default: loaded from the served
            model's id (``GET /models``), which works when it is a local path.
        model: the model name sent with each request; default: the first one
            ``GET /models`` lists.
        api_key: sent as a bearer token when set.
        timeout_s: per-request HTTP timeout.
        max_retries: retries of a request after a connection error or a 5xx/429.
        max_concurrency: requests in flight at once.

    Attributes:
        tokenizer: the tokenizer (the collector renders prompts with it).
        stop_ids: ids that end a turn (eos, the template's end-of-turn token).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        tokenizer: Any = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        max_concurrency: int = 64,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        bad = [u for u in urls if not str(u).startswith(("http://", "https://"))]
        if not urls or bad:
            raise ConfigError(
                f"base_url must be one or more URLs starting with http:// or https://, got "
                f"{base_url!r}"
            )
        if max_retries < 0 or max_concurrency < 1 or timeout_s <= 0:
            raise ConfigError(
                "need max_retries >= 0, max_concurrency >= 1 and timeout_s > 0, got "
                f"{max_retries}, {max_concurrency}, {timeout_s}"
            )
        self.base_urls = [str(u).rstrip("/") for u in urls]
        self.base_url = self.base_urls[0]
        self._lock = threading.Lock()
        self._inflight = [0] * len(self.base_urls)
        self._pins: OrderedDict[str, int] = OrderedDict()  # session -> server (LRU)
        self.api_key = api_key
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.max_concurrency = int(max_concurrency)
        self.model = model or self._first_model()
        if tokenizer is None or isinstance(tokenizer, str):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer or self.model)
        self.tokenizer = tokenizer
        self.stop_ids = stop_token_ids(tokenizer)
        self._calls = 0

    # ---------------------------------------------------------------- HTTP
    def _first_model(self) -> str:
        data = self._send("GET", "/models", None)
        try:
            return str(data["data"][0]["id"])
        except (KeyError, IndexError, TypeError) as e:
            raise PolicyError(
                f"{self.base_url}/models listed no model ({_preview(data)}); pass model=..."
            ) from e

    def _route(self, session: str | None) -> int:
        """The server for ``session``: its pinned one, else the least busy."""
        with self._lock:
            server = self._pins.get(session) if session is not None else None
            if server is None:
                server = min(range(len(self.base_urls)), key=self._inflight.__getitem__)
                if session is not None:
                    self._pins[session] = server
                    if len(self._pins) > 100_000:
                        self._pins.popitem(last=False)
            elif session is not None:
                self._pins.move_to_end(session)
            self._inflight[server] += 1
        return server

    def _complete(self, body: dict[str, Any], session: str | None) -> Any:
        server = self._route(session)
        try:
            return self._send("POST", "/completions", body, self.base_urls[server])
        except InfraError:
            with self._lock:  # the server is gone: let the session's retry go elsewhere
                for s in [k for k, v in self._pins.items() if v == server]:
                    del self._pins[s]
            raise
        finally:
            with self._lock:
                self._inflight[server] -= 1

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        base: str | None = None,
        *,
        retries: int | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """One JSON request with retries; InfraError when the server stays unreachable."""
        base = base or self.base_url
        url = base + path
        retries = self.max_retries if retries is None else retries
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        payload = None if body is None else json.dumps(body).encode()
        last = ""
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(min(0.25 * 2 ** (attempt - 1), 4.0))
            req = urllib.request.Request(url, data=payload, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as resp:
                    raw = resp.read()
            except urllib.error.HTTPError as e:
                detail = _error_message(e.read())
                if e.code in _RETRY_STATUS:
                    last = f"HTTP {e.code}: {detail}"
                    continue
                raise PolicyError(f"{method} {url} was refused (HTTP {e.code}): {detail}") from e
            except (urllib.error.URLError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
                continue
            try:
                return json.loads(raw)
            except ValueError as e:
                raise PolicyError(f"{method} {url} answered with non-JSON: {_preview(raw)}") from e
        raise InfraError(
            f"the policy server at {base} did not answer {method} {path} after "
            f"{retries + 1} attempt(s) (last: {last}); is it running?"
        )

    # ---------------------------------------------------------------- generate
    def generate(self, requests: list[Request], params: SamplingParams) -> list[Generation]:
        """Sample one continuation per request, all requests in flight together.

        With ``params.seed`` set, request ``i`` of the ``n``-th call is sent with a
        seed derived from (seed, n, i): the G copies of a task differ, and the same
        calls in the same order ask for the same samples.
        """
        check_prompts(requests)
        call, self._calls = self._calls, self._calls + 1
        stop = sorted(self.stop_ids | {int(t) for t in params.stop_token_ids})
        bodies = [self._body(r, params, stop, call, i) for i, r in enumerate(requests)]
        out = [Generation([], [], "length") for _ in requests]
        todo = [i for i, b in enumerate(bodies) if b["max_tokens"] > 0]
        workers = min(self.max_concurrency, len(todo))
        if workers:
            with ThreadPoolExecutor(workers) as pool:
                answers = pool.map(
                    lambda i: self._complete(bodies[i], requests[i].session_id), todo
                )
                for i, data in zip(todo, answers, strict=True):
                    out[i] = self._generation(data, set(stop))
        return out

    # ---------------------------------------------------------------- weights
    def sync_weights(
        self, model: Any = None, path: str | None = None, *, timeout_s: float = 600.0
    ) -> None:
        """Make every server load new weights; raise unless each confirms in time.

        For vLLM servers started with ``VLLM_SERVER_DEV_MODE=1`` on the model directory
        ``path``, which they share with the trainer (a shared filesystem):

        1. ``model.save_pretrained(path)``, when ``model`` is given;
        2. ``POST {root}/collective_rpc`` with ``{"method": "reload_weights"}`` on each
           server: every worker reloads the weights from the directory it serves;
        3. ``POST {root}/reset_prefix_cache``: cached prefixes hold the old weights' keys.

        ``root`` is the server's root, ``base_url`` without its ``/v1``. The servers are
        asked in parallel; each request has ``timeout_s`` and no retry.

        Raises:
            InfraError: a server did not answer within ``timeout_s`` (or is unreachable).
            PolicyError: a server refused (e.g. HTTP 404: not started in dev mode).
        """
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
        if model is not None:
            if path is None:
                raise ConfigError("sync_weights(model=...) needs path=, the served directory")
            model.save_pretrained(path)

        def one(base: str) -> None:
            root = base[: -len("/v1")] if base.endswith("/v1") else base
            body = {"method": "reload_weights", "timeout": timeout_s}
            try:
                self._send("POST", "/collective_rpc", body, root, retries=0, timeout_s=timeout_s)
                self._send("POST", "/reset_prefix_cache", {}, root, retries=0, timeout_s=timeout_s)
            except PolicyError as e:
                raise PolicyError(
                    f"{e}. Weight sync needs vLLM's development endpoints: start the server "
                    "with VLLM_SERVER_DEV_MODE=1"
                ) from e
            except InfraError as e:
                raise InfraError(
                    f"weight sync failed: {root} did not confirm reload_weights within "
                    f"{timeout_s:g} s ({e})"
                ) from e

        with ThreadPoolExecutor(len(self.base_urls)) as pool:
            for future in [pool.submit(one, u) for u in self.base_urls]:
                future.result()

    def _body(
        self, r: Request, params: SamplingParams, stop: list[int], call: int, i: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": [int(t) for t in r.prompt_ids],
            "max_tokens": request_cap(r, params),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "n": 1,
            "logprobs": 0,
            "stop_token_ids": stop,
            "return_token_ids": True,
            "return_tokens_as_token_ids": True,
            "skip_special_tokens": False,
        }
        seed = request_seed(params.seed, call, i, r)
        if seed is not None:
            body["seed"] = seed
        return body

    def _generation(self, data: Any, stop: set[int]) -> Generation:
        try:
            choice = data["choices"][0]
            lp = choice.get("logprobs") or {}
            ids = choice.get("token_ids")
            if ids is None:
                ids = [_token_id(t) for t in lp["tokens"]]
            ids = [int(t) for t in ids]
            logprobs = [float(x) for x in lp["token_logprobs"]]
            reason = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise PolicyError(
                "the server's completion lacks sampled token ids or their logprobs "
                f"({type(e).__name__}: {e}); it must accept return_token_ids or "
                f"return_tokens_as_token_ids and logprobs=0 (vLLM does). Got: {_preview(data)}"
            ) from e
        return sampled_generation(ids, logprobs, reason, stop, f"the server at {self.base_url}")


def _token_id(token: str) -> int:
    if not isinstance(token, str) or not token.startswith(_TOKEN_PREFIX):
        raise ValueError(f"token {token!r} is not 'token_id:<id>'")
    return int(token[len(_TOKEN_PREFIX) :])


def _error_message(raw: bytes) -> str:
    try:
        err = json.loads(raw)
        if isinstance(err, dict):
            inner = err.get("error", err)
            if isinstance(inner, dict) and "message" in inner:
                return str(inner["message"])
            if "detail" in err:
                return str(err["detail"])
    except ValueError:
        pass
    return _preview(raw)


def _preview(value: Any, limit: int = 300) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"
