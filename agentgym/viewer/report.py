"""Build one static HTML file that shows what agents did.

The page needs no server and fetches nothing: its script and style are inlined and
the data sits in it as JSON. It shows a filterable list of trajectories (env,
status, success, group, step, reward range), each one's conversation with
per-turn rewards and their components, its token ledger coloured by loss mask
(logprobs on hover), the G samples of its group side by side with their
advantages, summary statistics, and, for a training run, reward and success per
step as inline SVG charts.

Advantages in the group view are computed in the page from each sample's
return: GRPO's ``(R - mean) / (std + 1e-6)`` and RLOO's ``R - mean(others)``,
skipping ``infra_error`` samples as the trainer does. A run configured with
another reward (e.g. outcome only) trained on different numbers; the page says so.

Example:
    >>> from agentgym.trajectory import Trajectory, Turn
    >>> t = Trajectory("demo/Echo-v0", seed=1, status="done", success=True,
    ...     initial_observation=[{"role": "user", "content": "Say hi."}],
    ...     turns=[Turn("hi", [], 1.0, {"outcome": 1.0})])
    >>> html = render_html(report_data([t]))
    >>> html.startswith("<!doctype html>") and "https://" not in html
    True
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

from agentgym.data.runs import Source, load_source
from agentgym.errors import ConfigError, require
from agentgym.trajectory import Trajectory

__all__ = ["report_data", "render_html", "write_report"]

#: Metrics charted for a training run, when metrics.jsonl has them.
CHART_KEYS = (
    "reward/total_mean",
    "reward/success_rate",
    "eval/success_rate",
    "rollout/zero_signal_fraction",
)


def _trajectory_data(i: int, t: Trajectory, step: int | None) -> dict[str, Any]:
    ledger = t.ledger
    if ledger is None and t.per_turn_ledgers:
        ledger = t.per_turn_ledgers[-1]  # the last turn's sample holds the most context
    tokens = None
    if ledger is not None:
        tokens = {
            "ids": ledger.input_ids,
            "mask": ledger.loss_mask,
            "logprobs": [round(x, 4) for x in ledger.logprobs],
            "spans": [list(s) for s in ledger.turn_spans],
            "per_turn": t.per_turn_ledgers is not None,
        }
    return {
        "i": i,
        "env_id": t.env_id,
        "seed": t.seed,
        "group_id": t.group_id or f"#{i}",
        "sample_index": t.sample_index,
        "status": t.status,
        "outcome": t.outcome,
        "success": t.success,
        "total_reward": t.total_reward,
        "step": step,
        "error": t.error,
        "initial": t.initial_observation,
        "turns": [
            {
                "action": turn.action,
                "observation": turn.observation,
                "reward": turn.reward,
                "components": turn.reward_components,
                "finish_reason": turn.finish_reason,
                "terminated": turn.terminated,
                "truncated": turn.truncated,
            }
            for turn in t.turns
        ],
        "tokens": tokens,
    }


def report_data(
    trajectories: list[Trajectory],
    *,
    steps: list[int | None] | None = None,
    metrics: list[dict[str, Any]] | None = None,
    title: str = "agentgym report",
    tokenizer: Any = None,
) -> dict[str, Any]:
    """The JSON the page embeds.

    Args:
        trajectories: what to show.
        steps: the training step of each trajectory (None: not from a run).
        metrics: a run's ``metrics.jsonl`` rows.
        title: the page title.
        tokenizer: decodes token ids into the text shown in the token view (a
            Hugging Face tokenizer); without one, the view shows ids.
    """
    steps = steps if steps is not None else [None] * len(trajectories)
    if len(steps) != len(trajectories):
        raise ConfigError(f"{len(steps)} steps for {len(trajectories)} trajectories")
    data: dict[str, Any] = {
        "title": title,
        "trajectories": [
            _trajectory_data(i, t, s)
            for i, (t, s) in enumerate(zip(trajectories, steps, strict=True))
        ],
        "metrics": metrics or [],
        "chart_keys": list(CHART_KEYS),
        "vocab": None,
    }
    if tokenizer is not None:
        ids = sorted({i for t in trajectories for s in t.samples() for i in s.input_ids})
        texts = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False)
        data["vocab"] = {str(i): text for i, text in zip(ids, texts, strict=True)}
    return data


def _asset(name: str) -> str:
    return resources.files("agentgym.viewer").joinpath(name).read_text(encoding="utf-8")


def render_html(data: dict[str, Any]) -> str:
    """The whole page: inline style, inline script, the data as embedded JSON."""
    # Inside a <script> element "</script>" or "<!--" in the data would change how the
    # page parses: write every "<" as the JSON escape \u003c, which JSON.parse undoes.
    payload = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False, default=repr)
    payload = payload.replace("<", "\\u003c")
    title = html.escape(str(data.get("title", "agentgym report")))
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{_asset('report.css')}</style></head>"
        f"<body>{_asset('report.html')}"
        f"<script type='application/json' id='agentgym-data'>{payload}</script>"
        f"<script>{_asset('report.js')}</script></body></html>\n"
    )


def write_report(
    source: str | Path | Source,
    out: str | Path,
    *,
    tokenizer: str | Any | None = None,
    title: str | None = None,
) -> Path:
    """Write the HTML report of a trajectories JSONL file or a training run directory.

    Args:
        source: a ``.jsonl`` file, a run directory, or a loaded :class:`Source`.
        out: the HTML file to write.
        tokenizer: a tokenizer, or the path/name of one (loaded with transformers,
            extra ``hf``), to show token text instead of ids.
        title: page title (default: the source's path).

    Returns:
        The path written.
    """
    src = source if isinstance(source, Source) else load_source(source)
    if isinstance(tokenizer, (str, Path)):
        auto = require("transformers", "hf", "decoding tokens in the report").AutoTokenizer
        tokenizer = auto.from_pretrained(str(tokenizer))
    data = report_data(
        src.trajectories,
        steps=src.steps,
        metrics=src.metrics,
        title=title or f"agentgym: {src.path}",
        tokenizer=tokenizer,
    )
    data["source"] = str(src.path)
    data["is_run"] = src.is_run
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path


def _finite(x: Any) -> Any:
    """NaN and infinities are not JSON: they become None (shown as 'n/a')."""
    if isinstance(x, float):
        return x if x == x and abs(x) != float("inf") else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
