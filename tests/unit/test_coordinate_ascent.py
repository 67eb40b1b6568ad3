"""The merge weights' coordinate ascent: the same optimum as passes run to the end, with fewer scored points."""

import itertools

import numpy as np
import pytest

from recsys.batch.tuning import coordinate_ascent

pytestmark = pytest.mark.unit

GRIDS = {"a": [0.0, 0.5, 1.0], "b": [0.0, 1.0, 2.0, 3.0], "c": [0.1, 0.2]}


def every_pass(start, score, grids, objective, rounds):
    """The ascent without the early end: each pass runs to its last coordinate."""
    point = dict(start)
    for _ in range(rounds):
        before = score
        for name, grid in grids.items():
            for value in grid:
                if value != point[name] and (got := objective({**point, name: value})) > score:
                    point, score = {**point, name: value}, got
        if score <= before:
            break
    return point, score


def table_objective(seed):
    """A random score per grid point (ties are rare but possible), and a counter of the points scored."""
    rng = np.random.default_rng(seed)
    table = {key: float(rng.integers(0, 50)) for key in itertools.product(*GRIDS.values())}
    calls = []

    def objective(point):
        calls.append(point)
        return table[tuple(point[n] for n in GRIDS)]

    return table, objective, calls


@pytest.mark.parametrize("seed", range(25))
def test_the_early_end_finds_what_running_every_pass_finds(seed):
    table, objective, calls = table_objective(seed)
    start = {"a": 0.0, "b": 0.0, "c": 0.1}
    expected = every_pass(start, table[(0.0, 0.0, 0.1)], GRIDS, objective, 4)
    full_calls = len(calls)
    calls.clear()
    assert coordinate_ascent(start, table[(0.0, 0.0, 0.1)], GRIDS, objective, 4, "test") == expected
    assert len(calls) <= full_calls


def test_a_pass_ends_at_the_coordinate_that_last_moved():
    # separable: a and b each have one best value, c never matters; the first pass finds everything
    objective_calls = []

    def objective(point):
        objective_calls.append(point)
        return -abs(point["a"] - 0.5) - abs(point["b"] - 2.0)

    point, score = coordinate_ascent({"a": 0.0, "b": 0.0, "c": 0.1}, -2.5, GRIDS, objective, 3, "test")
    assert point == {"a": 0.5, "b": 2.0, "c": 0.1} and score == 0.0
    # pass 1 scores 2 + 3 + 1 points; pass 2 scores a's 2 other values and stops at b, which moved last
    assert len(objective_calls) == 6 + 2


def test_no_rounds_keeps_the_start():
    assert coordinate_ascent({"a": 0.0, "b": 0.0, "c": 0.1}, 1.0, GRIDS, lambda p: 9.0, 0, "test") == \
        ({"a": 0.0, "b": 0.0, "c": 0.1}, 1.0)
