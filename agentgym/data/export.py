"""Export trajectories: a ``datasets.Dataset``, a parquet file, or SFT chat JSONL.

``agentgym export FILE.jsonl --to hf|parquet|sft`` calls these. The ``hf`` and
``parquet`` forms hold **one row per training sample** (a trajectory's token ledger;
in the per-turn fallback, one row per turn's ledger), with these columns:

=====================  ======================  ==============================================
column                 type                    meaning
=====================  ======================  ==============================================
``env_id``             string                  the environment id
``seed``               int64 (null)            the task seed
``group_id``           string                  ties the G samples of one task together
``sample_index``       int64                   the sample's index within its group
``part``               int64                   0, or the turn of a per-turn ledger
``status``             string                  done, truncated, env_error, infra_error
``outcome``            float64 (null)          the episode's outcome score
``success``            bool (null)             whether the episode counts as solved
``total_reward``       float64                 sum of the turn rewards
``turn_rewards``       list<float64>           each turn's scalar reward
``reward_components``  string (JSON)           each turn's named components, a JSON list
``messages``           list<struct<role,       the whole conversation (extra keys such as
                       content: string>>       ``tool_calls`` are kept in ``messages_json``)
``messages_json``      string (JSON)           the conversation exactly as recorded
``input_ids``          list<int64>             the ledger's token ids (prompt and sampled)
``loss_mask``          list<int8>              1 on sampled tokens, 0 elsewhere
``logprobs``           list<float64>           the sampler's logprob per token, 0 if masked
``turn_spans``         list<list<int64>>       [start, end) of each assistant turn's tokens
``error``              string (null)           the error of a failed episode
``metadata``           string (JSON)           options, reset info and collector metadata
=====================  ======================  ==============================================

A trajectory without a ledger (it failed before any token) has one row with empty
ledger lists. The ``sft`` form is JSONL, one ``{"messages": [...]}`` per
*successful* trajectory (``success`` true, status ``done`` or ``truncated``),
cut after its last assistant message: the chat shape TRL's ``SFTTrainer`` and most
fine-tuning tools read.

Example:
    >>> from agentgym.trajectory import Trajectory, Turn
    >>> t = Trajectory("demo/Echo-v0", seed=1, status="done", success=True, outcome=1.0,
    ...     initial_observation=[{"role": "user", "content": "Say hi."}],
    ...     turns=[Turn("hi", [{"role": "user", "content": "Right."}], 1.0)])
    >>> sft_records([t])
    [{'messages': [{'role': 'user', 'content': 'Say hi.'}, {'role': 'assistant', 'content': 'hi'}]}]
    >>> ledger_rows([t])[0]["total_reward"]
    1.0
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentgym.errors import ConfigError, require
from agentgym.trajectory import Trajectory

__all__ = ["FORMATS", "export", "ledger_rows", "sft_records", "to_hf", "to_parquet", "to_sft"]

#: What ``agentgym export --to`` accepts.
FORMATS = ("hf", "parquet", "sft")


def ledger_rows(trajectories: Iterable[Trajectory]) -> list[dict[str, Any]]:
    """One dict per training sample, with the columns in the module docstring."""
    rows = []
    for t in trajectories:
        base = {
            "env_id": t.env_id,
            "seed": t.seed,
            "group_id": t.group_id,
            "sample_index": t.sample_index,
            "status": t.status,
            "outcome": t.outcome,
            "success": t.success,
            "total_reward": t.total_reward,
            "turn_rewards": [float(r) for r in t.turn_rewards],
            "reward_components": json.dumps([turn.reward_components for turn in t.turns]),
            "messages": [
                {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
                for m in t.messages
            ],
            "messages_json": json.dumps(t.messages, ensure_ascii=False),
            "error": t.error,
            "metadata": json.dumps(
                {"options": t.options, **t.metadata}, ensure_ascii=False, default=repr
            ),
        }
        samples = t.samples()
        if not samples:
            rows.append(base | {"part": 0, **_ledger_columns(None)})
        for part, ledger in enumerate(samples):
            rows.append(base | {"part": part, **_ledger_columns(ledger)})
    return rows


def _ledger_columns(ledger: Any) -> dict[str, Any]:
    if ledger is None:
        return {"input_ids": [], "loss_mask": [], "logprobs": [], "turn_spans": []}
    return {
        "input_ids": list(ledger.input_ids),
        "loss_mask": list(ledger.loss_mask),
        "logprobs": list(ledger.logprobs),
        "turn_spans": [list(s) for s in ledger.turn_spans],
    }


def _arrow_schema() -> Any:
    pa = require("pyarrow", "data", "parquet and datasets export")
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("env_id", pa.string()),
            ("seed", pa.int64()),
            ("group_id", pa.string()),
            ("sample_index", pa.int64()),
            ("part", pa.int64()),
            ("status", pa.string()),
            ("outcome", pa.float64()),
            ("success", pa.bool_()),
            ("total_reward", pa.float64()),
            ("turn_rewards", pa.list_(pa.float64())),
            ("reward_components", pa.string()),
            ("messages", pa.list_(message)),
            ("messages_json", pa.string()),
            ("input_ids", pa.list_(pa.int64())),
            ("loss_mask", pa.list_(pa.int8())),
            ("logprobs", pa.list_(pa.float64())),
            ("turn_spans", pa.list_(pa.list_(pa.int64()))),
            ("error", pa.string()),
            ("metadata", pa.string()),
        ]
    )


def _table(trajectories: Iterable[Trajectory]) -> Any:
    pa = require("pyarrow", "data", "parquet and datasets export")
    schema = _arrow_schema()
    rows = ledger_rows(trajectories)
    return pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in rows], schema=schema)


def to_parquet(trajectories: Iterable[Trajectory], path: str | Path) -> int:
    """Write one parquet file; returns the number of rows."""
    pq = require("pyarrow.parquet", "data", "parquet export")
    table = _table(trajectories)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
    return int(table.num_rows)


def to_hf(trajectories: Iterable[Trajectory], path: str | Path) -> int:
    """Save a ``datasets.Dataset`` (``save_to_disk``); ``datasets.load_from_disk`` reads it back.

    Returns:
        The number of rows.
    """
    datasets = require("datasets", "data", "Hugging Face datasets export")
    ds = datasets.Dataset(_table(trajectories))
    ds.save_to_disk(str(path))
    return int(ds.num_rows)


def sft_records(trajectories: Iterable[Trajectory]) -> list[dict[str, Any]]:
    """``{"messages": [...]}`` of each successful trajectory, ending with its last action."""
    out = []
    for t in trajectories:
        if not t.success or t.status not in ("done", "truncated"):
            continue
        messages = t.messages
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
        if last >= 0:
            out.append({"messages": messages[: last + 1]})
    return out


def to_sft(trajectories: Iterable[Trajectory], path: str | Path) -> int:
    """Write SFT chat JSONL (see :func:`sft_records`); returns the number of records."""
    records = sft_records(trajectories)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(records)


def export(trajectories: Iterable[Trajectory], path: str | Path, to: str) -> int:
    """Write ``trajectories`` to ``path`` in format ``to`` (one of :data:`FORMATS`)."""
    writers = {"hf": to_hf, "parquet": to_parquet, "sft": to_sft}
    if to not in writers:
        raise ConfigError(f"unknown export format {to!r}; choose one of {list(FORMATS)}")
    return writers[to](trajectories, path)
