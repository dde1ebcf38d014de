"""Turns, trajectories, the token ledger, and their versioned JSONL form.

One JSONL line per :class:`Trajectory`; ``Trajectory.from_dict(t.to_dict())``
gives back an equal object, and floats survive exactly (JSON writes ``repr``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from agentgym.errors import AgentGymError

__all__ = [
    "SCHEMA_VERSION",
    "Status",
    "TokenLedger",
    "Turn",
    "Trajectory",
    "write_jsonl",
    "read_jsonl",
    "iter_jsonl",
]

#: Version of the JSONL form; bumped on any incompatible change.
SCHEMA_VERSION = 1

#: ``done``: the env terminated. ``truncated``: a turn or token limit cut it.
#: ``env_error``: the env raised. ``infra_error``: sandbox/server failure.
Status = Literal["done", "truncated", "env_error", "infra_error", "running"]
STATUSES = ("done", "truncated", "env_error", "infra_error", "running")


@dataclass
class TokenLedger:
    """Token ids of one training sample, exactly as the policy saw and sampled them.

    All lists have the same length ``T``. ``loss_mask[t] == 1`` on sampled
    (assistant) tokens, 0 on prompt and observation tokens; ``logprobs[t]`` is
    the sampler's log-probability of ``input_ids[t]`` (0.0 where masked).
    ``turn_spans[k] = (start, end)`` is the half-open range of the k-th
    assistant turn's sampled tokens.
    """

    input_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    turn_spans: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def add_prompt(self, ids: Iterable[int]) -> None:
        """Append prompt/observation tokens (mask 0, logprob 0)."""
        ids = list(ids)
        self.input_ids.extend(ids)
        self.loss_mask.extend([0] * len(ids))
        self.logprobs.extend([0.0] * len(ids))

    def add_sampled(self, ids: list[int], logprobs: list[float]) -> tuple[int, int]:
        """Append one assistant turn's sampled tokens; returns its span."""
        if len(ids) != len(logprobs):
            raise AgentGymError(
                f"a sampled turn has {len(ids)} token ids but {len(logprobs)} logprobs; "
                "the policy backend must return one logprob per token"
            )
        start = len(self.input_ids)
        self.input_ids.extend(ids)
        self.loss_mask.extend([1] * len(ids))
        self.logprobs.extend(float(x) for x in logprobs)
        span = (start, len(self.input_ids))
        self.turn_spans.append(span)
        return span

    def validate(self) -> None:
        """Raise if the parallel lists disagree or spans do not match the mask."""
        n = len(self.input_ids)
        if not (len(self.loss_mask) == len(self.logprobs) == n):
            raise AgentGymError(
                f"ledger lists differ in length: input_ids={n}, "
                f"loss_mask={len(self.loss_mask)}, logprobs={len(self.logprobs)}"
            )
        covered = sum(e - s for s, e in self.turn_spans)
        if covered != sum(self.loss_mask):
            raise AgentGymError(
                f"turn_spans cover {covered} tokens but loss_mask marks {sum(self.loss_mask)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "input_ids": list(self.input_ids),
            "loss_mask": list(self.loss_mask),
            "logprobs": list(self.logprobs),
            "turn_spans": [list(s) for s in self.turn_spans],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenLedger:
        """Inverse of :meth:`to_dict`."""
        return cls(
            input_ids=[int(x) for x in d["input_ids"]],
            loss_mask=[int(x) for x in d["loss_mask"]],
            logprobs=[float(x) for x in d["logprobs"]],
            turn_spans=[(int(s), int(e)) for s, e in d["turn_spans"]],
        )


@dataclass
class Turn:
    """One agent turn: the action taken and what the env answered.

    ``observation`` holds the messages the env returned *after* the action.
    """

    action: str
    observation: list[dict[str, Any]]
    reward: float
    reward_components: dict[str, float] = field(default_factory=dict)
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    finish_reason: str = "stop"
    """Why generation of ``action`` stopped: ``stop`` (end of turn) or ``length``."""


@dataclass
class Trajectory:
    """A whole episode: the conversation, per-turn rewards, tokens and status.

    ``group_id`` ties the G samples of one task together (same env, seed and
    options); advantage estimators compare within a group.
    """

    env_id: str
    seed: int | None = None
    options: dict[str, Any] | None = None
    group_id: str = ""
    sample_index: int = 0
    initial_observation: list[dict[str, Any]] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    ledger: TokenLedger | None = None
    per_turn_ledgers: list[TokenLedger] | None = None
    """Set instead of ``ledger`` when the chat template rewrites history."""
    status: Status = "running"
    outcome: float | None = None
    success: bool | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------- derived views
    @property
    def messages(self) -> list[dict[str, Any]]:
        """The full conversation: initial observation, then actions and replies."""
        out = list(self.initial_observation)
        for t in self.turns:
            out.append({"role": "assistant", "content": t.action})
            out.extend(t.observation)
        return out

    @property
    def turn_rewards(self) -> list[float]:
        """The scalar reward of each turn."""
        return [t.reward for t in self.turns]

    @property
    def total_reward(self) -> float:
        """Undiscounted sum of turn rewards."""
        return float(sum(self.turn_rewards))

    @property
    def scorable(self) -> bool:
        """False for infrastructure failures, which group statistics must skip."""
        return self.status != "infra_error"

    def samples(self) -> list[TokenLedger]:
        """Training samples: the single ledger, or one per turn in fallback mode."""
        if self.per_turn_ledgers is not None:
            return list(self.per_turn_ledgers)
        return [self.ledger] if self.ledger is not None else []

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, tagged with :data:`SCHEMA_VERSION`."""
        d = asdict(self)
        d["ledger"] = self.ledger.to_dict() if self.ledger is not None else None
        d["per_turn_ledgers"] = (
            [x.to_dict() for x in self.per_turn_ledgers]
            if self.per_turn_ledgers is not None
            else None
        )
        d["schema_version"] = SCHEMA_VERSION
        return _json_safe(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        """Inverse of :meth:`to_dict`; refuses unknown schema versions."""
        d = dict(d)
        version = d.pop("schema_version", None)
        if version != SCHEMA_VERSION:
            raise AgentGymError(
                f"trajectory schema_version {version!r} is not supported "
                f"(this agentgym reads version {SCHEMA_VERSION}); "
                "re-collect or convert the file with the matching agentgym version"
            )
        d["turns"] = [Turn(**t) for t in d.get("turns", [])]
        if d.get("ledger") is not None:
            d["ledger"] = TokenLedger.from_dict(d["ledger"])
        if d.get("per_turn_ledgers") is not None:
            d["per_turn_ledgers"] = [TokenLedger.from_dict(x) for x in d["per_turn_ledgers"]]
        return cls(**d)

    def to_json(self) -> str:
        """One JSON line (no trailing newline)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=True)


def _json_safe(x: Any) -> Any:
    """Make nested data JSON-serialisable: tuples to lists, numpy scalars to Python."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if hasattr(x, "item") and callable(x.item):  # numpy scalar
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return repr(x)


def write_jsonl(path: str | Path | IO[str], trajectories: Iterable[Trajectory]) -> int:
    """Write trajectories one per line; returns how many were written.

    ``path`` may be an open text file, to append as a run goes on.
    """
    n = 0
    if hasattr(path, "write"):
        for t in trajectories:
            path.write(t.to_json() + "\n")  # type: ignore[union-attr]
            n += 1
        return n
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        return write_jsonl(f, trajectories)


def iter_jsonl(path: str | Path) -> Iterator[Trajectory]:
    """Yield trajectories from a JSONL file; a bad line raises with its number."""
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield Trajectory.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError, KeyError) as e:
                raise AgentGymError(f"{path}:{lineno}: not a trajectory line: {e}") from e


def read_jsonl(path: str | Path) -> list[Trajectory]:
    """Read every trajectory in a JSONL file."""
    return list(iter_jsonl(path))
