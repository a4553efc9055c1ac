"""Contribution scores (pure): Shapley values of providers over a characteristic function v(subset).

v(S) is the utility of the model reconstructed from the updates of the providers in S (GTG-Shapley: rebuilt from
the round updates, not retrained); how it is reconstructed is the caller's wiring — here v is a callable or a table
keyed by frozensets of provider ids, and every subset's value is asked at most once.

- Up to ``EXACT_LIMIT`` (10) providers, the values are exact: the weighted sum of marginal contributions over all
  2ⁿ subsets.
- Beyond, they are estimated by Monte Carlo over random permutations from a recorded seed. Each permutation's
  marginal contributions lie in [−R, R] where R = ``value_range`` (v's values lie in an interval of that width), so
  by Hoeffding's inequality and a union bound over the n providers, every estimate lies within
  ``half_width = 2R·√(ln(2n/δ) / 2m)`` of its true value with probability at least 1 − δ (δ = 1 − confidence,
  m permutations).
- A significance floor: a provider whose value is not above ``max(floor, half_width)`` earns nothing, and the
  others' shares are renormalized (``Contributions.weights``).

Both methods keep efficiency exactly in expectation and, up to float rounding, in every run: Σφᵢ = v(N) − v(∅).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import numpy as np

from settlement.errors import InvalidGame

EXACT_LIMIT = 10
WEIGHT_SCALE = 1_000_000
Game = Callable[[frozenset[str]], float] | Mapping[frozenset[str], float]


@dataclass(frozen=True)
class Contributions:
    """Each provider's contribution score, how it was computed, and the floor under which it earns nothing."""

    values: Mapping[str, float]
    method: str  # "exact" or "monte-carlo"
    grand: float  # v(N) − v(∅), what the values sum to
    floor: float  # the stated significance floor
    seed: int | None = None
    permutations: int | None = None
    confidence: float | None = None
    half_width: float = 0.0  # the Monte Carlo error bound at ``confidence``; 0 for exact values

    @property
    def noise_floor(self) -> float:
        """Return the value a provider must exceed to earn: the stated floor or the error bound, whichever is larger."""
        return max(self.floor, self.half_width)

    def significant(self) -> frozenset[str]:
        """Return the providers whose contribution is above the noise floor."""
        return frozenset(p for p, value in self.values.items() if value > self.noise_floor)

    def weights(self, scale: int = WEIGHT_SCALE) -> dict[str, int]:
        """Return integer split weights: renormalized shares of the significant providers, zero for the rest.

        When no provider is significant every weight is zero, and the split falls back to equal
        (``settlement.sharing``).
        """
        kept = self.significant()
        mass = math.fsum(self.values[p] for p in kept)
        return {p: (round(scale * self.values[p] / mass) if p in kept else 0) for p in sorted(self.values)}


def _players(players: Iterable[str]) -> tuple[str, ...]:
    ordered = tuple(sorted(set(players)))
    if not ordered:
        raise InvalidGame("a contribution game needs at least one provider", errors={"players": ["empty"]})
    return ordered


class _Values:
    """v, asked at most once per subset."""

    def __init__(self, game: Game) -> None:
        self.game = game
        self.cache: dict[frozenset[str], float] = {}

    def __call__(self, subset: frozenset[str]) -> float:
        if subset not in self.cache:
            try:
                value = self.game[subset] if isinstance(self.game, Mapping) else self.game(subset)
            except KeyError as exc:
                raise InvalidGame(f"the game has no value for the subset {sorted(subset)}",
                                  errors={"game": [f"missing {sorted(subset)}"]}) from exc
            value = float(value)
            if not math.isfinite(value):
                raise InvalidGame(f"v({sorted(subset)}) is {value}, not a finite number",
                                  errors={"game": ["not finite"]})
            self.cache[subset] = value
        return self.cache[subset]


def exact_shapley(players: Iterable[str], game: Game, floor: float = 0.0) -> Contributions:
    """Return the exact Shapley values over at most ``EXACT_LIMIT`` providers."""
    ordered = _players(players)
    n = len(ordered)
    if n > EXACT_LIMIT:
        raise InvalidGame(f"exact Shapley values are computed for at most {EXACT_LIMIT} providers, not {n}",
                          errors={"players": [f"more than {EXACT_LIMIT}"]})
    v = _Values(game)
    value = [v(frozenset(p for bit, p in enumerate(ordered) if mask >> bit & 1)) for mask in range(1 << n)]
    weight = [math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n) for size in range(n)]
    values = {}
    for index, player in enumerate(ordered):
        bit = 1 << index
        values[player] = math.fsum(weight[mask.bit_count()] * (value[mask | bit] - value[mask])
                                   for mask in range(1 << n) if not mask & bit)
    return Contributions(values, "exact", value[-1] - value[0], floor)


def hoeffding_half_width(value_range: float, permutations: int, confidence: float, players: int) -> float:
    """Return the half-width within which all ``players`` estimates lie at ``confidence`` (Hoeffding + union)."""
    if not 0 < confidence < 1 or permutations < 1 or value_range < 0 or players < 1:
        raise InvalidGame("the error bound needs 0 < confidence < 1, permutations ≥ 1, value_range ≥ 0",
                          errors={"confidence": [str(confidence)], "permutations": [str(permutations)]})
    delta = 1 - confidence
    return 2 * value_range * math.sqrt(math.log(2 * players / delta) / (2 * permutations))


def monte_carlo_shapley(players: Iterable[str], game: Game, *, permutations: int, seed: int, value_range: float,
                        confidence: float = 0.95, floor: float = 0.0) -> Contributions:
    """Estimate Shapley values from ``permutations`` random orders drawn from ``seed``, with their error bound."""
    ordered = _players(players)
    half_width = hoeffding_half_width(value_range, permutations, confidence, len(ordered))
    v = _Values(game)
    rng = np.random.default_rng(seed)
    sums = dict.fromkeys(ordered, 0.0)
    empty = v(frozenset())
    for _ in range(permutations):
        coalition: frozenset[str] = frozenset()
        before = empty
        for index in rng.permutation(len(ordered)):
            player = ordered[index]
            coalition = coalition | {player}
            after = v(coalition)
            sums[player] += after - before
            before = after
    values = {player: sums[player] / permutations for player in ordered}
    return Contributions(values, "monte-carlo", v(frozenset(ordered)) - empty, floor, seed=seed,
                         permutations=permutations, confidence=confidence, half_width=half_width)


def contributions(players: Iterable[str], game: Game, *, seed: int, value_range: float, floor: float = 0.0,
                  permutations: int = 2000, confidence: float = 0.95) -> Contributions:
    """Return exact Shapley values for up to ``EXACT_LIMIT`` providers, Monte Carlo estimates beyond."""
    ordered = _players(players)
    if len(ordered) <= EXACT_LIMIT:
        return exact_shapley(ordered, game, floor)
    return monte_carlo_shapley(ordered, game, permutations=permutations, seed=seed, value_range=value_range,
                               confidence=confidence, floor=floor)
