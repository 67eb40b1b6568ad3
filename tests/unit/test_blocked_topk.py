"""The blocked top-k that evaluation scores factor models with: the same lists as scoring everything at once."""

import numpy as np
import pytest

from recsys.batch.blocked_topk import block_top_k

pytestmark = pytest.mark.unit


def brute_force(users: np.ndarray, items: np.ndarray, n: int, seen: list[np.ndarray]) -> list[list[int]]:
    out = []
    for u, row in enumerate(users @ items.T):
        ranked = sorted((i for i in range(len(row)) if i not in set(seen[u].tolist())), key=lambda i: (-row[i], i))
        out.append(ranked[:n])
    return out


@pytest.mark.parametrize("block_cells", [1, 7 * 40, 10_000_000])
def test_blocks_give_each_users_best_unseen_items_best_first(block_cells):
    rng = np.random.default_rng(3)
    users, items = rng.normal(size=(23, 5)).astype(np.float32), rng.normal(size=(40, 5)).astype(np.float32)
    seen = [rng.choice(40, size=rng.integers(0, 10), replace=False) for _ in range(23)]
    got = block_top_k(users, items, 6, seen, block_cells=block_cells)
    assert [g.tolist() for g in got] == brute_force(users, items, 6, seen)


def test_ties_go_to_the_lower_item_and_seen_items_never_come_back():
    users, items = np.ones((1, 2), np.float32), np.ones((4, 2), np.float32)  # every item scores the same
    assert block_top_k(users, items, 2, [np.array([0])])[0].tolist() == [1, 2]


def test_a_user_who_has_seen_almost_everything_gets_what_is_left():
    users, items = np.ones((2, 1), np.float32), np.arange(3, dtype=np.float32).reshape(3, 1)
    got = block_top_k(users, items, 3, [np.array([0, 2]), np.array([], np.int64)])
    assert [g.tolist() for g in got] == [[1], [2, 1, 0]]
