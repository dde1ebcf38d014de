"""TextWorld: text adventures generated from the seed with Microsoft TextWorld.

``agentgym/TextWorld-v0`` plays a game that TextWorld's generator builds from a
game seed and three size knobs (rooms, objects, quest length). The env's seed
picks the game seed (``n_games=N`` restricts it to ``0..N-1``, a fixed pool that
can be generated ahead of time); ``options={"task": 17}`` plays game seed 17
and ``options={"task": "path/to/game.z8"}`` plays an existing compiled game.

Difficulty ladder (kwarg ``difficulty``; explicit ``nb_rooms``, ``nb_objects``
or ``quest_length`` override its values):

====  =====  =======  ============
level rooms  objects  quest length
====  =====  =======  ============
1     1      2        1
2     2      4        2
3     4      8        3
4     6      12       5
5     8      16       8
====  =====  =======  ============

Games are compiled once (about 1-4 s each) and cached by (seed, knobs,
TextWorld version) under ``$AGENTGYM_CACHE/textworld`` or
``~/.cache/agentgym/textworld``; each game is built in a private temporary
folder and renamed into place, so parallel workers never see half-written
files. :func:`pregenerate` fills the cache ahead of a training run.

Actions: one command per turn, in ``<command>...</command>`` or, without the
tag, the first non-empty line. Only the first command of a chain (``.``,
``,``, ``;``, ``then``) is played, lower-cased and reduced to letters, digits,
spaces, ``-`` and ``'`` (other bytes can crash the Z-machine interpreter).
Interpreter meta commands (``quit``, ``restart``, ``save``, ``undo``, ...)
are refused with a message and no move is played.

Reward components: ``format`` (-0.1 when no command can be read),
``score`` (change of the game's score / max score), ``progress`` (fraction of
the initial walkthrough newly completed, best so far; weight 0 by default,
enable it with ``reward_weights={"progress": 0.1}``) and ``outcome``
(1.0 on the turn the game is won). A lost game terminates with outcome 0.

``score`` and ``progress`` are process rewards: reported every turn in
``info["reward_components"]`` but, by default (``shaping="gated"``,
:mod:`agentgym.envs.shaping`), paid only on the turn the game is won (where
each sums to 1). A failed game, lost or cut by the turn limit, earns at most
0, its outcome. ``shaping="dense"`` pays them turn by
turn: farmable, since playing all of the walkthrough but its last command and
then stalling until the turn limit earns the partial score and up to
(n - 1) / n of ``progress`` without winning.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from agentgym.core import Message, system, user
from agentgym.envs.shaping import ShapedEnv
from agentgym.errors import ConfigError, DependencyMissing
from agentgym.registry import register
from agentgym.rewards import RewardSpec

__all__ = [
    "DIFFICULTIES",
    "GameKnobs",
    "TextWorld",
    "clean_feedback",
    "default_cache_dir",
    "generate_game",
    "parse_command",
    "pregenerate",
    "register_envs",
]


@dataclass(frozen=True)
class GameKnobs:
    """Size of a generated game."""

    nb_rooms: int
    """Rooms on the map."""
    nb_objects: int
    """Objects in the world (quest objects plus distractors)."""
    quest_length: int
    """Actions the quest needs, not counting moves between rooms."""

    def __post_init__(self) -> None:
        for name in ("nb_rooms", "nb_objects", "quest_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")

    @property
    def key(self) -> str:
        """Short text naming these knobs in cache paths."""
        return f"r{self.nb_rooms}-o{self.nb_objects}-q{self.quest_length}"


#: Difficulty level -> game size.
DIFFICULTIES: dict[int, GameKnobs] = {
    1: GameKnobs(1, 2, 1),
    2: GameKnobs(2, 4, 2),
    3: GameKnobs(4, 8, 3),
    4: GameKnobs(6, 12, 5),
    5: GameKnobs(8, 16, 8),
}

_GEN_ATTEMPTS = 5
_MAX_COMMAND = 100
_META_VERBS = frozenset(
    "quit q restart save restore undo oops script unscript noscript transcript "
    "version verbose brief superbrief notify pronouns nouns".split()
)

SYSTEM_PROMPT = (
    "You are playing a text adventure game. Each turn, reply with exactly one "
    "command inside <command></command> tags, for example <command>open the box"
    "</command>. Commands are short imperative phrases such as: go north, take "
    "key, open chest, unlock door with key, put apple on table, insert coin into "
    "slot, examine lamp, look, inventory. Complete the objective to win."
)


# ------------------------------------------------------------------ games
def _import_textworld() -> Any:
    try:
        import textworld
        import textworld.generator
    except ImportError as e:
        raise DependencyMissing("textworld", "textworld", "agentgym/TextWorld-v0") from e
    return textworld


def default_cache_dir() -> Path:
    """``$AGENTGYM_CACHE/textworld`` if that is set, else ``~/.cache/agentgym/textworld``."""
    root = os.environ.get("AGENTGYM_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "agentgym"
    return base / "textworld"


def generate_game(seed: int, knobs: GameKnobs, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the compiled game for ``(seed, knobs)``, generating it if not cached.

    The game is built in a temporary folder inside the cache and renamed into
    place in one step, so concurrent callers never read a partial game; when two
    build the same game, the first rename wins and the other copy is dropped.

    Raises:
        DependencyMissing: textworld is not installed.
        ConfigError: no quest of this length fits a world of this size.

    Example:
        >>> path = generate_game(0, DIFFICULTIES[1])  # doctest: +SKIP
        >>> path.name  # doctest: +SKIP
        'game.z8'
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"game seed must be an int >= 0, got {seed!r}")
    tw = _import_textworld()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = cache / f"tw{tw.__version__}-{knobs.key}-s{int(seed)}"
    game_file = final / "game.z8"
    if game_file.is_file():
        return game_file
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=cache))
    try:
        _build(tw, int(seed), knobs, tmp / "game.z8")
        try:
            os.rename(tmp, final)
        except OSError:
            if not game_file.is_file():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return game_file


def _build(tw: Any, seed: int, knobs: GameKnobs, path: Path) -> None:
    """Generate and compile one game; retry derived seeds if no quest fits."""
    from textworld.generator import QuestGenerationError

    last: Exception | None = None
    for attempt in range(_GEN_ATTEMPTS):
        options = tw.GameOptions()
        # textworld seeds its own RandomStates from this int (no global seeding)
        options.seeds = seed if attempt == 0 else _derived_seed(seed, attempt)
        options.nb_rooms = knobs.nb_rooms
        options.nb_objects = knobs.nb_objects
        options.quest_length = knobs.quest_length
        options.path = str(path)
        options.force_recompile = True
        try:
            game = tw.generator.make_game(options)
        except QuestGenerationError as e:
            last = e
            continue
        tw.generator.compile_game(game, options)
        return
    raise ConfigError(
        f"TextWorld could not generate a quest of length {knobs.quest_length} in "
        f"{knobs.nb_rooms} room(s) with {knobs.nb_objects} object(s) for seed {seed} "
        f"({_GEN_ATTEMPTS} attempts); use more rooms/objects or a shorter quest"
    ) from last


def _derived_seed(seed: int, attempt: int) -> int:
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0] % 2**31)


def pregenerate(
    seeds: Iterable[int],
    difficulty: int = 2,
    cache_dir: str | os.PathLike | None = None,
    **knobs: int,
) -> list[Path]:
    """Generate (or find cached) games for ``seeds`` ahead of a run.

    Args:
        seeds: game seeds, e.g. ``range(64)`` with ``TextWorld(n_games=64)``.
        difficulty: ladder level, see :data:`DIFFICULTIES`.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        **knobs: ``nb_rooms``, ``nb_objects``, ``quest_length`` overrides.

    Returns:
        Paths of the compiled games, in the order of ``seeds``.
    """
    k = _knobs(difficulty, knobs)
    return [generate_game(int(s), k, cache_dir) for s in seeds]


def _knobs(difficulty: int, overrides: Mapping[str, int | None]) -> GameKnobs:
    if difficulty not in DIFFICULTIES:
        raise ConfigError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
    unknown = set(overrides) - {"nb_rooms", "nb_objects", "quest_length"}
    if unknown:
        raise ConfigError(
            f"unknown game knob(s) {sorted(unknown)}; use nb_rooms, nb_objects, quest_length"
        )
    base = DIFFICULTIES[difficulty]
    values = {name: getattr(base, name) for name in ("nb_rooms", "nb_objects", "quest_length")}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return GameKnobs(**values)


# ---------------------------------------------------------------- parsing
_TAG_RE = re.compile(r"<command>(.*?)</command>", re.IGNORECASE | re.DOTALL)
_CHAIN_RE = re.compile(r"[.,;!?\n]|\bthen\b")
_KEEP_RE = re.compile(r"[^a-z0-9' -]+")


def parse_command(text: str) -> str | None:
    r"""Read one game command from the agent's text, or None if there is none.

    Example:
        >>> parse_command("I will look around.\n<command>Open the Box</command>")
        'open the box'
        >>> parse_command("go north. take key")
        'go north'
        >>> parse_command("   ") is None
        True
    """
    m = _TAG_RE.search(text)
    if m:
        raw = m.group(1)
    else:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        raw = lines[0] if lines else ""
    raw = _CHAIN_RE.split(raw.strip().lower(), maxsplit=1)[0]
    cmd = " ".join(_KEEP_RE.sub(" ", raw).split())[:_MAX_COMMAND].strip()
    return cmd or None


def clean_feedback(text: str) -> str:
    r"""Strip the interpreter's banner, prompt, status bar and end-of-game menu.

    Example:
        >>> clean_feedback("\nYou open the box.\n\n>          -= Kitchen =-0/3")
        'You open the box.'
    """
    text = text.split("Would you like to RESTART")[0]
    lines = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(">") or (s and set(s) <= set("_|\\/$<> ")):
            continue  # prompt + status bar, or the ASCII-art banner
        lines.append(re.sub(r"(?<=\S) {8,}.*$", "", line).strip())
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return out or "(no response)"


# -------------------------------------------------------------------- env
class TextWorld(ShapedEnv):
    """A generated TextWorld text adventure; win it by reaching the objective.

    Args:
        difficulty: ladder level 1..5 (see :data:`DIFFICULTIES`).
        nb_rooms: rooms, overriding the level's value.
        nb_objects: objects, overriding the level's value.
        quest_length: quest length, overriding the level's value.
        n_games: draw game seeds from ``0..n_games-1`` (a fixed, cacheable pool);
            None draws from ``0..2**31-1``.
        admissible_hint: append the list of admissible commands to each observation.
        cache_dir: where compiled games are cached (default :func:`default_cache_dir`).
        render_mode: ``"ansi"``, ``"human"`` or None.
        reward_weights: weight overrides for the reward components.
        shaping: ``"gated"`` (default): ``score`` and ``progress`` are paid only
            on the turn the game is won; ``"dense"``: every turn (farmable).

    Example:
        >>> env = agentgym.make("agentgym/TextWorld-v0", difficulty=1)  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
        >>> env.step("<command>" + info["walkthrough"][0] + "</command>")  # doctest: +SKIP
    """

    reward_spec = RewardSpec(
        {
            "format": "-0.1 when no command can be read from the action",
            "score": "change of the game's score this turn / max score "
            "(process reward: paid on success unless shaping='dense')",
            "progress": "fraction of the initial walkthrough newly completed (best so far) "
            "(process reward: paid on success unless shaping='dense')",
            "outcome": "1.0 on the turn the game is won",
        },
        weights={"progress": 0.0},
    )
    process_components = frozenset({"score", "progress"})

    def __init__(
        self,
        difficulty: int = 2,
        *,
        nb_rooms: int | None = None,
        nb_objects: int | None = None,
        quest_length: int | None = None,
        n_games: int | None = None,
        admissible_hint: bool = False,
        cache_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
        shaping: str = "gated",
    ) -> None:
        super().__init__(render_mode=render_mode, reward_weights=reward_weights, shaping=shaping)
        overrides = {"nb_rooms": nb_rooms, "nb_objects": nb_objects, "quest_length": quest_length}
        self.knobs = _knobs(difficulty, overrides)
        if n_games is not None and (not isinstance(n_games, int) or n_games < 1):
            raise ConfigError(f"n_games must be None or an int >= 1, got {n_games!r}")
        self.n_games = n_games
        self.admissible_hint = bool(admissible_hint)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._tw = _import_textworld()  # fail at make time, not mid-run
        self._infos = self._tw.EnvInfos(
            feedback=True,
            description=True,
            inventory=True,
            objective=True,
            admissible_commands=True,
            score=True,
            max_score=True,
            moves=True,
            won=True,
            lost=True,
            policy_commands=True,
        )
        self._game: Any = None
        self._game_file: str | None = None
        self._game_seed: int | None = None
        self._done = False
        self._score = 0
        self._max_score = 1
        self._walk_len = 1
        self._best_remaining = 0

    # ----------------------------------------------------------------- api
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Start a game chosen by the seed, or by ``options["task"]`` (seed or game path)."""
        super().reset(seed=seed)
        game_file = self._choose_game(dict(options or {}))
        state = self._start(game_file)
        walkthrough = list(state["policy_commands"] or [])
        self._done = False
        self._score = int(state["score"] or 0)
        self._max_score = max(1, int(state["max_score"] or 0))
        self._walk_len = max(1, len(walkthrough))
        self._best_remaining = len(walkthrough)
        text = clean_feedback(state["feedback"] or "")
        messages = [system(SYSTEM_PROMPT), user(text + self._hint(state))]
        info = self._info(state, None)
        info.update(
            game_file=game_file,
            game_seed=self._game_seed,
            objective=str(state["objective"] or ""),
            walkthrough=walkthrough,
        )
        return self.begin(messages, info)

    def step(self, action: str) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Play one command; malformed text costs a format penalty, never raises."""
        if self._game is None:
            raise gymnasium.error.ResetNeeded("call reset() before step() on TextWorld")
        zero = {"format": 0.0, "score": 0.0, "progress": 0.0, "outcome": 0.0}
        text = action if isinstance(action, str) else ""
        if self._done:
            msg = "The game is over. Call reset() to play again."
            return self.turn([user(msg)], zero, terminated=True, action=text)
        cmd = parse_command(text)
        if cmd is None:
            msg = (
                "No command found. Reply with one command inside <command></command> "
                "tags, e.g. <command>look</command>."
            )
            parts = {**zero, "format": -0.1}
            return self.turn([user(msg)], parts, action=text, info=self._info(None, None))
        if cmd.split()[0] in _META_VERBS:
            msg = f"'{cmd.split()[0]}' is not available in this game. Try another command."
            return self.turn([user(msg)], zero, action=text, info=self._info(None, cmd))
        return self._play(cmd, text, zero)

    def close(self) -> None:
        """Stop the game interpreter."""
        if self._game is not None:
            self._game.close()
            self._game = None
            self._game_file = None
        super().close()

    # ------------------------------------------------------------ internals
    def _choose_game(self, options: dict[str, Any]) -> str:
        high = self.n_games if self.n_games is not None else 2**31 - 1
        drawn = int(self.np_random.integers(0, high))  # drawn always: same RNG stream
        task = options.get("task")
        if task is None:
            self._game_seed = drawn
        elif isinstance(task, (int, np.integer)) and not isinstance(task, bool):
            self._game_seed = int(task)
        elif isinstance(task, (str, os.PathLike)):
            path = Path(task)
            if not path.is_file():
                raise ConfigError(f"options['task'] names no game file: {str(path)!r}")
            self._game_seed = None
            return str(path.resolve())
        else:
            raise ConfigError(
                "options['task'] must be a game seed (int >= 0) or the path of a compiled "
                f"game (.z8), got {task!r}"
            )
        return str(generate_game(self._game_seed, self.knobs, self.cache_dir))

    def _start(self, game_file: str) -> Any:
        if self._game is None or self._game_file != game_file:
            if self._game is not None:
                self._game.close()
            with warnings.catch_warnings():
                # Jericho warns that it cannot read the score of TextWorld games;
                # TextWorld's own wrapper tracks the score, so the warning is noise.
                warnings.filterwarnings("ignore", message=".*not fully supported")
                self._game = self._tw.start(game_file, self._infos)
            self._game_file = game_file
        # a fixed interpreter seed: Jericho's default (-1) follows the clock
        self._game.seed(1234)
        return self._game.reset()

    def _play(
        self, cmd: str, text: str, zero: dict[str, float]
    ) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        state, _, done = self._game.step(cmd)
        raw = state["feedback"] or ""
        if "Emulator halted" in raw:
            raise RuntimeError(f"the TextWorld interpreter halted on command {cmd!r}: {raw!r}")
        won, lost = bool(state["won"]), bool(state["lost"])
        lost = lost or (bool(done) and not won)
        score = int(state["score"] or 0)
        parts = dict(zero)
        parts["score"] = (score - self._score) / self._max_score
        self._score = score
        remaining = len(state["policy_commands"] or []) if not lost else self._best_remaining
        if won:
            remaining = 0
        if remaining < self._best_remaining:
            parts["progress"] = (self._best_remaining - remaining) / self._walk_len
            self._best_remaining = remaining
        feedback = clean_feedback(raw)
        if won:
            parts["outcome"] = 1.0
            feedback += f"\n\nYou won! Final score: {score}/{self._max_score}."
        elif lost:
            feedback += f"\n\nYou lost. Final score: {score}/{self._max_score}."
        else:
            feedback += self._hint(state)
        self._done = won or lost
        outcome = (1.0 if won else 0.0) if self._done else None
        success = won if self._done else None
        info = self._info(state, cmd)
        return self.turn(
            [user(feedback)],
            parts,
            terminated=self._done,
            outcome=outcome,
            success=success,
            action=text,
            info=info,
        )

    def _hint(self, state: Any) -> str:
        if not self.admissible_hint:
            return ""
        cmds = sorted(state["admissible_commands"] or [])
        return "\n\nAdmissible commands: " + ", ".join(cmds)

    def _info(self, state: Any, cmd: str | None) -> dict[str, Any]:
        """Per-step info; ``state`` None when no move was played."""
        info: dict[str, Any] = {"command": cmd, "score": self._score, "max_score": self._max_score}
        if state is not None:
            info.update(
                moves=int(state["moves"] or 0),
                won=bool(state["won"]),
                lost=bool(state["lost"]),
                inventory=clean_feedback(state["inventory"] or ""),
                admissible_commands=sorted(state["admissible_commands"] or []),
            )
        return info


def register_envs() -> None:
    """Register ``agentgym/TextWorld-v0``."""
    register(
        "agentgym/TextWorld-v0",
        entry_point="agentgym.envs.textworld_env:TextWorld",
        max_turns=40,
        kwargs={"difficulty": 2},
    )
