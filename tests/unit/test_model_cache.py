"""Model swaps: with swap_in_background a worker keeps answering with the version it has while it reads the next."""

import threading
import time

import pytest

from recsys.serving import model_cache
from recsys.serving.model_cache import ModelCache
from tests.unit.test_candidates import shop

pytestmark = pytest.mark.unit


class SlowStore:
    """A registry whose reads of `blocked` versions wait until `release` is set."""

    def __init__(self, version: str | None) -> None:
        self.version, self.blocked, self.release, self.loads = version, set(), threading.Event(), []

    def current_version(self) -> str | None:
        return self.version

    def load(self, version: str, extras: bool = True):
        self.loads.append(version)
        if version in self.blocked:
            assert self.release.wait(10), "the test never released the read"
        model = shop(300)
        object.__setattr__(model, "version", version)
        return model


def answered_within(get, seconds: float = 5.0):
    """get()'s answer from another thread, or None when it was still waiting after `seconds`."""
    out = []
    caller = threading.Thread(target=lambda: out.append(get()))
    caller.start()
    caller.join(seconds)
    return out[0] if out else None


def eventually(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_new_version_is_read_aside_while_the_old_one_keeps_answering():
    store = SlowStore("v1")
    cache = ModelCache(store, 0.0, background=True)
    assert cache.get().version == "v1"  # no model yet: the first request waits for it
    store.version, store.blocked = "v2", {"v2"}
    during = answered_within(cache.get)
    assert during is not None and during.version == "v1"  # not stalled behind the read of v2
    assert answered_within(cache.get).version == "v1"
    store.release.set()
    assert eventually(lambda: cache.get().version == "v2")
    assert store.loads.count("v2") == 1  # one read, however many requests noticed it


def test_without_background_the_request_that_notices_a_version_waits_for_it():
    store = SlowStore("v1")
    cache = ModelCache(store, 0.0)
    cache.get()
    store.version, store.blocked = "v2", {"v2"}
    assert answered_within(cache.get, 0.3) is None  # still reading v2
    store.release.set()
    assert eventually(lambda: cache.get().version == "v2")


def test_warm_reads_the_current_version_before_any_request():
    store = SlowStore("v1")
    store.blocked = {"v1"}
    cache = ModelCache(store, 60.0, background=True)
    cache.warm()
    assert eventually(lambda: store.loads == ["v1"])
    store.release.set()
    assert cache.get().version == "v1"  # waits for the warm read rather than starting another
    assert store.loads == ["v1"]


def test_a_worker_with_no_model_looks_again_soon_whatever_refresh_s_says(monkeypatch):
    monkeypatch.setattr(model_cache, "NO_MODEL_RECHECK_S", 0.05)
    store = SlowStore(None)
    cache = ModelCache(store, 3600.0, background=True)
    assert cache.get() is None  # nothing published yet
    store.version = "v1"
    assert eventually(lambda: cache.get() is not None and cache.get().version == "v1")
    store.version = "v2"
    time.sleep(0.2)
    assert cache.get().version == "v1"  # with a model, refresh_s holds again


def test_warm_keeps_looking_until_a_version_is_published(monkeypatch):
    monkeypatch.setattr(model_cache, "NO_MODEL_RECHECK_S", 0.02)
    store = SlowStore(None)
    cache = ModelCache(store, 3600.0, background=True)
    cache.warm()
    time.sleep(0.1)
    assert store.loads == []
    store.version = "v1"
    assert eventually(lambda: store.loads == ["v1"])  # read without any request asking for it


def test_on_swap_runs_once_per_version_served_after_it_is_in_place():
    store, seen = SlowStore("v1"), []
    cache = ModelCache(store, 0.0, on_swap=lambda: seen.append(store.loads[-1]))
    assert cache.get().version == "v1"
    cache.get()  # the same version again: no swap
    store.version = "v2"
    assert cache.get().version == "v2"
    assert seen == ["v1", "v2"]


def test_freeze_long_lived_takes_what_is_alive_out_of_full_collections():
    import gc

    from recsys.serving.long_lived import freeze_long_lived

    kept = [[] for _ in range(1000)]  # tracked containers alive at the freeze
    try:
        freeze_long_lived()
        assert gc.get_freeze_count() >= len(kept)
        cycle: list = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # objects made after the freeze are still collected
    finally:
        gc.unfreeze()
