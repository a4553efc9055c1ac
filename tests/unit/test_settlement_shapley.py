"""Shapley contribution scores keep their axioms, and Monte Carlo stays within its stated error bound."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.errors import InvalidGame
from settlement.shapley import (
    EXACT_LIMIT,
    contributions,
    exact_shapley,
    hoeffding_half_width,
    monte_carlo_shapley,
)


def _table(players, values):
    """A game as a table: every subset of ``players`` mapped to the next of ``values``."""
    subsets = [frozenset(c) for size in range(len(players) + 1) for c in itertools.combinations(players, size)]
    return dict(zip(subsets, values))


@st.composite
def games(draw, max_players=6):
    n = draw(st.integers(1, max_players))
    players = [f"prt_{i}" for i in range(n)]
    values = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=2 ** n, max_size=2 ** n))
    return players, _table(players, values)


def test_a_known_game_has_its_known_values():
    # the glove game: a holds a left glove, b and c right gloves; a pair is worth 1
    players = ["a", "b", "c"]
    game = lambda s: 1.0 if "a" in s and len(s) >= 2 else 0.0  # noqa: E731
    values = exact_shapley(players, game).values
    assert values["a"] == pytest.approx(2 / 3) and values["b"] == pytest.approx(1 / 6)


@given(games())
def test_values_sum_to_the_grand_coalition_minus_the_empty_one(drawn):
    players, game = drawn
    result = exact_shapley(players, game)
    assert math.fsum(result.values.values()) == pytest.approx(game[frozenset(players)] - game[frozenset()], abs=1e-9)
    assert result.grand == pytest.approx(game[frozenset(players)] - game[frozenset()])


@given(st.integers(2, 6), st.lists(st.floats(0, 1), min_size=7, max_size=7))
def test_symmetric_providers_get_equal_values(n, by_size):
    players = [f"prt_{i}" for i in range(n)]
    values = exact_shapley(players, lambda s: by_size[len(s)]).values  # v depends on the size only
    assert max(values.values()) - min(values.values()) < 1e-9


@given(games(max_players=5))
def test_a_null_provider_gets_nothing(drawn):
    players, game = drawn
    null = "prt_null"
    extended = {subset | extra: value for subset, value in game.items() for extra in (frozenset(), {null})}
    assert exact_shapley(players + [null], extended).values[null] == pytest.approx(0, abs=1e-12)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(games(max_players=5), st.integers(0, 2**32 - 1))
def test_monte_carlo_lies_within_its_bound_of_the_exact_values(drawn, seed):
    players, game = drawn
    exact = exact_shapley(players, game).values
    estimate = monte_carlo_shapley(players, game, permutations=400, seed=seed, value_range=1.0, confidence=0.999)
    assert all(abs(estimate.values[p] - exact[p]) <= estimate.half_width for p in players)
    assert math.fsum(estimate.values.values()) == pytest.approx(estimate.grand, abs=1e-9)


def test_monte_carlo_is_reproducible_from_its_recorded_seed():
    players = [f"prt_{i:02d}" for i in range(12)]
    game = lambda s: len(s) ** 0.5 / 12 ** 0.5  # noqa: E731
    first = contributions(players, game, seed=7, value_range=1.0, permutations=50)
    assert first.method == "monte-carlo" and first.seed == 7 and first.permutations == 50
    assert first == contributions(players, game, seed=7, value_range=1.0, permutations=50)
    assert first.half_width == pytest.approx(hoeffding_half_width(1.0, 50, 0.95, 12))


def test_up_to_ten_providers_are_exact_and_more_are_refused_by_the_exact_method():
    players = [f"prt_{i:02d}" for i in range(EXACT_LIMIT)]
    assert contributions(players, lambda s: len(s), seed=0, value_range=10).method == "exact"
    with pytest.raises(InvalidGame, match="at most 10"):
        exact_shapley(players + ["prt_99"], lambda s: len(s))


def test_each_subset_is_evaluated_once():
    asked = []
    exact_shapley(["a", "b", "c"], lambda s: asked.append(s) or len(s))
    assert len(asked) == 8 == len(set(asked))


def test_contributions_within_the_noise_floor_earn_nothing_and_the_rest_renormalize():
    game = {frozenset(): 0.0, frozenset("a"): 0.6, frozenset("b"): 0.3, frozenset("c"): 0.005,
            frozenset("ab"): 0.9, frozenset("ac"): 0.605, frozenset("bc"): 0.305, frozenset("abc"): 0.905}
    result = exact_shapley("abc", game, floor=0.01)
    assert result.significant() == {"a", "b"}
    assert result.weights() == {"a": 666_667, "b": 333_333, "c": 0}


def test_no_significant_provider_gives_all_zero_weights():
    result = exact_shapley("ab", lambda s: 0.0, floor=0.01)
    assert result.weights() == {"a": 0, "b": 0}


def test_a_missing_subset_or_a_non_finite_value_is_refused():
    with pytest.raises(InvalidGame, match=r"no value for the subset \['a'\]"):
        exact_shapley("ab", {frozenset(): 0.0, frozenset("b"): 1.0, frozenset("ab"): 1.0})
    with pytest.raises(InvalidGame, match="not a finite"):
        exact_shapley("a", lambda s: float("nan"))
    with pytest.raises(InvalidGame, match="at least one provider"):
        exact_shapley([], lambda s: 0.0)
