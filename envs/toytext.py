"""Gymnasium's toy-text games as text environments.

:class:`ToyText` adapts any Gymnasium env whose action space is ``Discrete(n)``
and whose observation space is ``Discrete`` or a ``Tuple`` of ``Discrete``: the
agent names an action with a word, and sees the state as text. Four games come
registered, each with its own readable rendering:

| id                         | actions                                      | max_turns |
|----------------------------|----------------------------------------------|-----------|
| `agentgym/FrozenLake-v0`   | left, down, right, up                        | 20        |
| `agentgym/Taxi-v0`         | south, north, east, west, pickup, dropoff    | 50        |
| `agentgym/CliffWalking-v0` | up, right, down, left                        | 50        |
| `agentgym/Blackjack-v0`    | stick, hit                                   | 10        |

An action is a bare word (case-insensitive; surrounding whitespace, quotes and
punctuation are ignored) or ``<action>word</action>`` anywhere in the text (a
tag wins over the rest of the text; the last tag counts). Anything else gets a
user message naming the valid actions and a ``format`` penalty; the game state
does not change, but the turn counts toward ``max_turns``.

Reward components (turn reward = weighted sum; override the weights with
``reward_weights={...}``):

| component | value                                              | default weight           |
|-----------|----------------------------------------------------|--------------------------|
| `env`     | the wrapped game's own reward for the step         | see below                |
| `format`  | -0.1 (`-format_penalty`) for a bad or unknown action | 1                      |
| `outcome` | on the terminating step: 1 on success, else 0;     | 1                        |
|           | Blackjack: the hand's result (-1, 0, 1; 1.5 for a  |                          |
|           | natural win with `natural=True`)                   |                          |
| `progress`| FrozenLake only: potential-based shaping, paid on  | 0                        |
|           | success unless `shaping="dense"` (see FrozenLake)  |                          |

Success: FrozenLake goal, Taxi delivery, CliffWalking goal, Blackjack hand
won. Default `env` weights: FrozenLake 0 and Blackjack 0 (there it duplicates
`outcome`), Taxi 0.02 and CliffWalking 0.01 (so that a move, -1 in the game,
costs less than a format error and invalid text never pays).

Nothing here can be farmed by default: the games' own rewards are positive
only on success (FrozenLake's goal, Taxi's delivery) or, in Blackjack, for a
won hand; the moves of Taxi and CliffWalking cost; and FrozenLake's
`progress` is gated on success. So a failed episode (a hole, a lost hand, a
turn limit) earns at most 0, what a prompt failure earns (falling into the
nearest hole; sticking at once and drawing).

``info["success"]``: goal reached / passenger delivered / hand won.
``info["state"]``: the inner game's state after the step (an int, a tuple for
Blackjack); with the seed it identifies where the agent is, so GiGPO groups
turns taken from the same state by it (see :class:`agentgym.rl.advantages.GiGPO`).
Episodes end by termination only (goal, hole, delivery, hand over); turn
limits come from the registration (``truncated``). The inner game is reseeded
from the env's own RNG on every reset, so a seed fixes the whole episode.

Example:
    >>> env = agentgym.make("agentgym/FrozenLake-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step("down")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium
from gymnasium import spaces

from agentgym.core import Message, system, user
from agentgym.envs.shaping import ShapedEnv
from agentgym.errors import ActionParseError, ConfigError
from agentgym.registry import register
from agentgym.rewards import RewardSpec

from ._parsing import join_words, parse_word, preview

__all__ = ["ToyText", "FrozenLake", "register_envs"]  # Taxi, CliffWalking, Blackjack: lazily

_COMPONENTS = {
    "env": "the wrapped game's own reward for the step",
    "format": "-format_penalty (default -0.1) for an unparseable or unknown action",
    "outcome": "on the terminating step: 1 on success, else 0 (Blackjack: the hand's result)",
}
_MOVES = {(0, -1): "left", (1, 0): "down", (0, 1): "right", (-1, 0): "up"}


class ToyText(ShapedEnv):
    """A text env over a Gymnasium env with ``Discrete`` actions and observations.

    Subclasses give a readable rendering by overriding :meth:`describe`,
    :meth:`event` and :meth:`is_success`; used directly it shows the raw state.

    Args:
        env: a Gymnasium id (made with ``gymnasium.make(env, **env_kwargs)``,
            unwrapped) or a callable returning the env.
        action_words: one word per action index, e.g. ``("left", "down", "right", "up")``.
        env_kwargs: keyword arguments for ``gymnasium.make``.
        title: the game's name in the system prompt.
        rules: one or two sentences of rules for the system prompt.
        format_penalty: magnitude of the ``format`` component for a bad action.
        render_mode: ``"ansi"``, ``"human"`` or None.
        reward_weights: per-component weight overrides.
        shaping: ``"gated"`` (default): process components (FrozenLake's
            ``progress``) are paid only on the turn that succeeds; ``"dense"``:
            every move (farmable, see :class:`FrozenLake`).

    Raises:
        ConfigError: the spaces are not supported or the words do not fit them.

    Example:
        >>> env = ToyText("FrozenLake-v1", ("left", "down", "right", "up"),
        ...               env_kwargs={"is_slippery": False})
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(_COMPONENTS)

    def __init__(
        self,
        env: str | Callable[[], gymnasium.Env],
        action_words: Sequence[str],
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        title: str | None = None,
        rules: str = "",
        format_penalty: float = 0.1,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
        shaping: str = "gated",
    ) -> None:
        super().__init__(render_mode=render_mode, reward_weights=reward_weights, shaping=shaping)
        #: The wrapped Gymnasium game (its type depends on the game, hence Any).
        self.game: Any
        if callable(env):
            self.game = env()
        else:
            self.game = gymnasium.make(env, **dict(env_kwargs or {})).unwrapped
        self.action_words: tuple[str, ...] = tuple(action_words)
        self._check_spaces()
        self.title = title or type(self.game).__name__
        self.rules = rules
        self.format_penalty = float(format_penalty)
        self._state: Any = None
        self._done = False

    def _check_spaces(self) -> None:
        act, obs = self.game.action_space, self.game.observation_space
        if not isinstance(act, spaces.Discrete):
            raise ConfigError(f"ToyText needs a Discrete action space, got {act}")
        ok_obs = isinstance(obs, spaces.Discrete) or (
            isinstance(obs, spaces.Tuple) and all(isinstance(s, spaces.Discrete) for s in obs)
        )
        if not ok_obs:
            raise ConfigError(
                f"ToyText needs a Discrete or Tuple-of-Discrete observation space, got {obs}"
            )
        words = [w.lower() for w in self.action_words]
        if len(words) != int(act.n) or len(set(words)) != len(words):
            raise ConfigError(
                f"action_words must name each of the {int(act.n)} actions once, "
                f"got {list(self.action_words)}"
            )
        if not all(w.isalpha() for w in words):
            raise ConfigError(f"action words must be single alphabetic words, got {words}")
        self.action_words = tuple(words)

    # ------------------------------------------------------------ rendering
    def system_prompt(self) -> str:
        """The system message: the game, its rules and the action words."""
        rules = f" {self.rules}" if self.rules else ""
        return (
            f"{self.title}.{rules} Each turn, reply with one action: "
            f"{join_words(self.action_words)}."
        )

    def describe(self, state: Any) -> str:
        """Text of the current state (subclasses draw the board)."""
        if isinstance(state, tuple):
            return "State: " + " ".join(str(int(s)) for s in state)
        return f"State: {int(state)}"

    def event(self, action: int, before: Any, after: Any, reward: float, terminated: bool) -> str:
        """One short line about what the last action did."""
        return f"You chose {self.action_words[action]}. Reward {reward:g}."

    def start_line(self) -> str:
        """The line under the state at reset."""
        return "Your move."

    def is_success(self, state: Any, reward: float, terminated: bool) -> bool:
        """Whether the episode counts as solved (default: ended with a positive reward)."""
        return bool(terminated and reward > 0)

    def outcome_of(self, state: Any, reward: float, success: bool) -> float:
        """The ``outcome`` component on the terminating step."""
        return 1.0 if success else 0.0

    def extra_components(self, before: Any, after: Any, terminated: bool) -> dict[str, float]:
        """Game-specific reward components of a valid move (declare them in reward_spec)."""
        return {}

    # ---------------------------------------------------------------- API
    def new_game(self, options: dict[str, Any]) -> None:
        """Hook run before each inner reset (e.g. to draw a new map)."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Start a new game; the inner game is seeded from this env's RNG."""
        super().reset(seed=seed)
        self.new_game(dict(options or {}))
        inner_seed = int(self.np_random.integers(2**31 - 1))
        state, _ = self.game.reset(seed=inner_seed)
        self._state, self._done = _plain(state), False
        text = f"{self.describe(self._state)}\n{self.start_line()}"
        return self.begin(
            [system(self.system_prompt()), user(text)],
            {"action_words": list(self.action_words)},
        )

    def parse_action(self, text: str) -> int:
        """The action index named by ``text``.

        Raises:
            ActionParseError: no single valid action word was found.
        """
        valid = f"Valid actions: {join_words(self.action_words)}."
        try:
            word = parse_word(text, "action")
        except ActionParseError as e:
            raise ActionParseError(f"{e} {valid}") from None
        if word not in self.action_words:
            raise ActionParseError(f"Unknown action {preview(word)}. {valid}")
        return self.action_words.index(word)

    def step(self, action: str) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Apply the action named in ``action``; a bad one leaves the game unchanged."""
        if self._state is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        text = action if isinstance(action, str) else str(action)
        if self._done:
            msg = "The game is over; call reset() to play again."
            return self.turn([user(msg)], {}, terminated=True, action=text)
        try:
            index = self.parse_action(text)
        except ActionParseError as e:
            return self.turn(
                [user(str(e))],
                {"format": -self.format_penalty},
                action=text,
                info={"state": self._state},
            )
        before = self._state
        state, reward, terminated, _, _ = self.game.step(index)
        self._state = _plain(state)
        reward, terminated = float(reward), bool(terminated)
        parts = {"env": reward, **self.extra_components(before, self._state, terminated)}
        outcome = success = None
        if terminated:
            self._done = True
            success = self.is_success(self._state, reward, terminated)
            outcome = self.outcome_of(self._state, reward, success)
            parts["outcome"] = outcome
        line = self.event(index, before, self._state, reward, terminated)
        feedback = user(f"{self.describe(self._state)}\n{line}")
        return self.turn(
            [feedback],
            parts,
            terminated=terminated,
            outcome=outcome,
            success=success,
            action=text,
            info={"state": self._state},
        )

    def close(self) -> None:
        """Close the inner game."""
        self.game.close()
        super().close()


def _plain(state: Any) -> Any:
    """Numpy scalars and tuples of them as plain ints (stable reprs, equality)."""
    if isinstance(state, tuple):
        return tuple(int(s) for s in state)
    return int(state)


def _grid_line(word: str, before: tuple[int, int], after: tuple[int, int]) -> str:
    """What a grid move did: moved as asked, slid elsewhere, or stayed."""
    delta = (after[0] - before[0], after[1] - before[1])
    if delta == (0, 0):
        return f"You tried {word} but did not move."
    actual = _MOVES.get(delta)
    if actual is None or actual == word:
        return f"You moved {word}."
    return f"You tried {word} but slipped {actual}."


def _distances_to_goal(board: list[str]) -> dict[tuple[int, int], int]:
    """Breadth-first distances to the ``G`` cell over cells that are not holes."""
    goal = next((r, c) for r, row in enumerate(board) for c, t in enumerate(row) if t == "G")
    dist, frontier = {goal: 0}, [goal]
    while frontier:
        nxt = []
        for r, c in frontier:
            for dr, dc in _MOVES:
                cell = (r + dr, c + dc)
                inside = 0 <= cell[0] < len(board) and 0 <= cell[1] < len(board[0])
                if inside and cell not in dist and board[cell[0]][cell[1]] != "H":
                    dist[cell] = dist[(r, c)] + 1
                    nxt.append(cell)
        frontier = nxt
    return dist


def _draw(rows: list[list[str]]) -> str:
    return "\n".join(" ".join(r) for r in rows)


# --------------------------------------------------------------- FrozenLake
class FrozenLake(ToyText):
    """FrozenLake: cross the ice from S to G without falling into a hole H.

    The board is drawn one row per line, cells separated by spaces: ``P`` you,
    ``S`` start, ``F`` frozen, ``H`` hole, ``G`` goal::

        P F F F
        F H F H
        F F F H
        H F F G
        You start at P.

    Args:
        map_name: ``"4x4"`` or ``"8x8"`` (Gymnasium's fixed maps).
        desc: a custom map (list of row strings of S/F/H/G); overrides map_name.
        is_slippery: moves may slide sideways (Gymnasium's dynamics).
        random_map_size: if set, every reset draws a new solvable map of this
            size from the seed (overrides map_name and desc).
        frozen_prob: probability that a random map's tile is frozen.
        coordinates: also state the agent's cell in words ("You are at row 2,
            column 3.", 1-based) at the end of each observation; small models
            read that far more easily than the drawn board.
        **kwargs: :class:`ToyText` options (format_penalty, render_mode,
            reward_weights, shaping).

    The optional ``progress`` component (weight 0 by default; enable with
    ``reward_weights={"progress": w}``) is potential-based shaping. The
    potential of a cell is minus its shortest safe-path distance to G divided
    by the start's; a hole, or a cell with no safe path to G, has the start's
    potential. Each move earns the change of potential, so an episode's
    progress telescopes: 1 for reaching G, 0 for falling into a hole, whatever
    the path. It is a process reward: with the default ``shaping="gated"`` it
    is paid on the turn that reaches G, where it always sums to 1. Pass
    ``shaping="dense"`` to pay it move by move (turn-level credit); dense
    progress is farmable through the turn limit: walking next to G and stepping
    back and forth there until truncated earns (d - 1) / d of it, d the
    start's distance, without ever reaching G.
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(
        {
            **_COMPONENTS,
            "progress": "(safe-path distance to G before - after) / distance from S, a hole "
            "giving back all progress; weight 0 unless enabled (process reward: paid on "
            "success unless shaping='dense')",
        },
        weights={"env": 0.0, "progress": 0.0},
    )
    process_components: ClassVar[frozenset[str]] = frozenset({"progress"})

    def __init__(
        self,
        map_name: str = "4x4",
        desc: Sequence[str] | None = None,
        is_slippery: bool = False,
        random_map_size: int | None = None,
        frozen_prob: float = 0.8,
        coordinates: bool = False,
        **kwargs: Any,
    ) -> None:
        from gymnasium.envs.toy_text.frozen_lake import MAPS, FrozenLakeEnv

        if desc is None and map_name not in MAPS:
            raise ConfigError(f"map_name must be one of {sorted(MAPS)}, got {map_name!r}")
        if random_map_size is not None and not 2 <= int(random_map_size) <= 16:
            raise ConfigError(f"random_map_size must be in 2..16, got {random_map_size}")
        if not 0.0 < frozen_prob <= 1.0:
            raise ConfigError(f"frozen_prob must be in (0, 1], got {frozen_prob}")
        self.is_slippery = bool(is_slippery)
        self.random_map_size = None if random_map_size is None else int(random_map_size)
        self.frozen_prob = float(frozen_prob)
        self.coordinates = bool(coordinates)
        self._distances: dict[tuple[int, int], int] | None = None
        base = list(desc) if desc is not None else MAPS[map_name]
        rules = (
            "Walk on the frozen lake from the start S to the goal G without falling into a "
            "hole H. Map: P you, F frozen, H hole, G goal, S start."
        )
        if is_slippery:
            rules += " The ice is slippery: a move may slide you sideways."
        super().__init__(
            lambda: FrozenLakeEnv(desc=base, is_slippery=self.is_slippery),
            ("left", "down", "right", "up"),
            title="FrozenLake",
            rules=rules,
            **kwargs,
        )

    def new_game(self, options: dict[str, Any]) -> None:
        """Draw a new map from the env's RNG when ``random_map_size`` is set."""
        if self.random_map_size is None:
            return
        from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv, generate_random_map

        map_seed = int(self.np_random.integers(2**31 - 1))
        desc = generate_random_map(self.random_map_size, self.frozen_prob, seed=map_seed)
        self.game.close()
        self.game = FrozenLakeEnv(desc=desc, is_slippery=self.is_slippery)
        self._distances = None

    def distances(self) -> dict[tuple[int, int], int]:
        """Shortest safe-path length (moves, avoiding holes) from each cell to G."""
        if self._distances is None:
            self._distances = _distances_to_goal(self.board)
        return self._distances

    def extra_components(self, before: Any, after: Any, terminated: bool) -> dict[str, float]:
        """``progress``: the move's change of potential (see the class docstring)."""
        dist = self.distances()
        start = next(
            (r, c) for r, row in enumerate(self.board) for c, t in enumerate(row) if t == "S"
        )
        d_start = dist.get(start)
        if not d_start:
            return {"progress": 0.0}

        def potential(state: Any) -> float:
            d = dist.get(self._pos(state))  # None for holes and cells cut off from G
            return -1.0 if d is None else -d / d_start

        return {"progress": potential(after) - potential(before)}

    @property
    def board(self) -> list[str]:
        """The current map as row strings (S/F/H/G)."""
        return [b"".join(row).decode() for row in self.game.desc]

    def _pos(self, state: int) -> tuple[int, int]:
        return divmod(int(state), int(self.game.ncol))

    def describe(self, state: Any) -> str:
        """The board with ``P`` at the agent's cell."""
        rows = [list(r) for r in self.board]
        r, c = self._pos(state)
        rows[r][c] = "P"
        return _draw(rows)

    def _where(self, state: Any) -> str:
        if not self.coordinates:
            return ""
        r, c = self._pos(state)
        return f" You are at row {r + 1}, column {c + 1}."

    def start_line(self) -> str:
        """At reset."""
        return "You start at P." + self._where(self._state)

    def event(self, action: int, before: Any, after: Any, reward: float, terminated: bool) -> str:
        """Moved / slipped / fell into a hole / reached the goal."""
        r, c = self._pos(after)
        tile = self.board[r][c]
        if tile == "H":
            return "You fell into a hole. Game over."
        if tile == "G":
            return "You reached the goal!"
        return _grid_line(self.action_words[action], self._pos(before), (r, c)) + self._where(after)

    def is_success(self, state: Any, reward: float, terminated: bool) -> bool:
        """On the goal tile."""
        r, c = self._pos(state)
        return self.board[r][c] == "G"


# ------------------------------------------------------------- registration
def register_envs() -> None:
    """Register the toy-text games (idempotent)."""
    mod = "agentgym.envs.toytext"
    register(
        "agentgym/FrozenLake-v0",
        entry_point=f"{mod}:FrozenLake",
        max_turns=20,
        kwargs={"map_name": "4x4", "is_slippery": False},
    )
    classic = "agentgym.envs.toytext_classic"
    register("agentgym/Taxi-v0", entry_point=f"{classic}:Taxi", max_turns=50)
    register("agentgym/CliffWalking-v0", entry_point=f"{classic}:CliffWalking", max_turns=50)
    register("agentgym/Blackjack-v0", entry_point=f"{classic}:Blackjack", max_turns=10)


_CLASSIC = {"CliffWalking", "Taxi", "Blackjack"}


def __getattr__(name: str) -> Any:
    # CliffWalking, Taxi and Blackjack live in toytext_classic (module size); keep the old path.
    if name in _CLASSIC:
        from agentgym.envs import toytext_classic

        return getattr(toytext_classic, name)
    raise AttributeError(f"module 'agentgym.envs.toytext' has no attribute {name!r}")
