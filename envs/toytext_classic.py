"""CliffWalking, Taxi and Blackjack as chat envs (see :mod:`agentgym.envs.toytext`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from agentgym.rewards import RewardSpec

from .toytext import _COMPONENTS, _MOVES, ToyText, _draw, _grid_line

__all__ = ["CliffWalking", "Taxi", "Blackjack"]


# ------------------------------------------------------------- CliffWalking
class CliffWalking(ToyText):
    """CliffWalking: walk from the bottom-left start to the bottom-right goal.

    Stepping on the cliff (``C``) costs -100 and sends you back to the start.
    Board: ``P`` you, ``.`` safe ground, ``C`` cliff, ``G`` goal.

    Args:
        is_slippery: moves may slide sideways (Gymnasium's dynamics).
        **kwargs: :class:`ToyText` options.
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(_COMPONENTS, weights={"env": 0.01})

    def __init__(self, is_slippery: bool = False, **kwargs: Any) -> None:
        from gymnasium.envs.toy_text.cliffwalking import CliffWalkingEnv

        rules = (
            "Walk from the start at the bottom left to the goal G at the bottom right. "
            "Stepping on the cliff C sends you back to the start. "
            "Map: P you, . safe, C cliff, G goal."
        )
        super().__init__(
            lambda: CliffWalkingEnv(is_slippery=bool(is_slippery)),
            ("up", "right", "down", "left"),
            title="CliffWalking",
            rules=rules,
            **kwargs,
        )

    def _pos(self, state: int) -> tuple[int, int]:
        return divmod(int(state), int(self.game.shape[1]))

    def describe(self, state: Any) -> str:
        """The 4x12 board with ``P`` at the agent's cell."""
        nrow, ncol = (int(n) for n in self.game.shape)
        rows = [["." for _ in range(ncol)] for _ in range(nrow)]
        for c in range(1, ncol - 1):
            rows[nrow - 1][c] = "C"
        rows[nrow - 1][ncol - 1] = "G"
        r, c = self._pos(state)
        rows[r][c] = "P"
        return _draw(rows)

    def start_line(self) -> str:
        """At reset."""
        return "You start at P."

    def event(self, action: int, before: Any, after: Any, reward: float, terminated: bool) -> str:
        """Moved / fell off the cliff / reached the goal."""
        if reward <= -100:
            return "You fell off the cliff and are back at the start."
        if terminated:
            return "You reached the goal!"
        return _grid_line(self.action_words[action], self._pos(before), self._pos(after))

    def is_success(self, state: Any, reward: float, terminated: bool) -> bool:
        """The game only ends at the goal."""
        return bool(terminated)


# --------------------------------------------------------------------- Taxi
_TAXI_LOCS = "RGYB"
_TAXI_MOVES = {"south": "down", "north": "up", "east": "right", "west": "left"}


class Taxi(ToyText):
    """Taxi: pick the passenger up at one of R, G, Y, B and drop them at the destination.

    The 5x5 map is Gymnasium's (``|`` is a wall, ``:`` open), with ``T`` for
    the taxi, followed by where the passenger and the destination are::

        +---------+
        |R: | : :G|
        | : | : : |
        | : : : : |
        | | : |T: |
        |Y| : |B: |
        +---------+
        Passenger at Y, destination G.

    Args:
        is_rainy: moves may slide sideways (Gymnasium's dynamics).
        fickle_passenger: the passenger may change destination once.
        **kwargs: :class:`ToyText` options.
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(_COMPONENTS, weights={"env": 0.02})

    def __init__(self, is_rainy: bool = False, fickle_passenger: bool = False, **kwargs: Any):
        from gymnasium.envs.toy_text.taxi import TaxiEnv

        rules = (
            "Drive the taxi T to the passenger, pick them up, drive to the destination and "
            "drop them off. Stops are R, G, Y and B; | is a wall."
        )
        super().__init__(
            lambda: TaxiEnv(is_rainy=bool(is_rainy), fickle_passenger=bool(fickle_passenger)),
            ("south", "north", "east", "west", "pickup", "dropoff"),
            title="Taxi",
            rules=rules,
            **kwargs,
        )

    def describe(self, state: Any) -> str:
        """The map with ``T`` at the taxi, then the passenger and destination."""
        row, col, passenger, dest = self.game.decode(int(state))
        rows = [[c.decode() for c in line] for line in self.game.desc.tolist()]
        rows[1 + row][2 * col + 1] = "T"
        where = "in the taxi" if passenger == 4 else f"at {_TAXI_LOCS[passenger]}"
        grid = "\n".join("".join(r) for r in rows)
        return f"{grid}\nPassenger {where}, destination {_TAXI_LOCS[dest]}."

    def event(self, action: int, before: Any, after: Any, reward: float, terminated: bool) -> str:
        """Drove / hit a wall / picked up / dropped off / delivered."""
        word = self.action_words[action]
        b_row, b_col, b_pass, _ = self.game.decode(int(before))
        a_row, a_col, a_pass, _ = self.game.decode(int(after))
        if terminated:
            return "You delivered the passenger!"
        if word == "pickup":
            if b_pass != 4 and a_pass == 4:
                return "You picked up the passenger."
            return "There is no passenger to pick up here."
        if word == "dropoff":
            if b_pass == 4 and a_pass != 4:
                return f"You dropped the passenger at {_TAXI_LOCS[a_pass]}, not the destination."
            return "You cannot drop off here."
        if (a_row, a_col) == (b_row, b_col):
            return f"A wall stops you going {word}."
        moved = _MOVES.get((a_row - b_row, a_col - b_col))
        if moved is None or moved == _TAXI_MOVES[word]:
            return f"You drove {word}."
        return f"You tried {word} but slid elsewhere."

    def is_success(self, state: Any, reward: float, terminated: bool) -> bool:
        """Taxi only ends on a delivery."""
        return bool(terminated)


# ---------------------------------------------------------------- Blackjack
def _cards(hand: Sequence[int]) -> str:
    return " ".join("A" if int(c) == 1 else str(int(c)) for c in hand)


class Blackjack(ToyText):
    """Blackjack against a dealer who draws to 17 (Gymnasium's rules).

    The state shows your cards and total (``usable ace`` when an ace counts
    11) and the dealer's face-up card; when the hand ends, the dealer's cards.
    ``outcome`` is the hand's result: 1 win, 0 draw, -1 loss (1.5 for a
    natural with ``natural=True``).

    Args:
        natural: a natural blackjack pays 1.5.
        sab: Sutton & Barto's rules (a natural wins outright).
        **kwargs: :class:`ToyText` options.
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(_COMPONENTS, weights={"env": 0.0})

    def __init__(self, natural: bool = False, sab: bool = False, **kwargs: Any) -> None:
        from gymnasium.envs.toy_text.blackjack import BlackjackEnv

        rules = (
            "Get a hand total closer to 21 than the dealer without going over. "
            "hit takes a card; stick ends your turn and the dealer plays. A is 1 or 11."
        )
        super().__init__(
            lambda: BlackjackEnv(natural=bool(natural), sab=bool(sab)),
            ("stick", "hit"),
            title="Blackjack",
            rules=rules,
            **kwargs,
        )

    def describe(self, state: Any) -> str:
        """Your cards and total, the dealer's card (all cards once the hand is over)."""
        total, dealer_card, usable_ace = state
        ace = ", usable ace" if usable_ace else ""
        mine = f"Your cards: {_cards(self.game.player)} (total {total}{ace})."
        if self._done:
            from gymnasium.envs.toy_text.blackjack import sum_hand

            dealer = self.game.dealer
            return f"{mine} Dealer's cards: {_cards(dealer)} (total {sum_hand(dealer)})."
        return f"{mine} Dealer shows: {_cards([dealer_card])}."

    def start_line(self) -> str:
        """At reset."""
        return "Hit or stick?"

    def event(self, action: int, before: Any, after: Any, reward: float, terminated: bool) -> str:
        """Drew a card / bust / win / lose / draw."""
        if not terminated:
            return f"You drew {_cards(self.game.player[-1:])}. Hit or stick?"
        if self.action_words[action] == "hit":
            return "Bust! You lose."
        if reward > 0:
            return "You win!"
        return "You lose." if reward < 0 else "Draw."

    def is_success(self, state: Any, reward: float, terminated: bool) -> bool:
        """The hand was won."""
        return bool(terminated and reward > 0)

    def outcome_of(self, state: Any, reward: float, success: bool) -> float:
        """The hand's result (the game's reward)."""
        return float(reward)
