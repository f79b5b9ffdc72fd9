"""Behaviour of every pool strategy: reuse, reset, drops, stats, borrow, bounds."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from poolbench.pools import (
    STRATEGIES,
    BoundedPool,
    FreeListPool,
    LockedPool,
    NoPool,
    PoolClosed,
    PoolMisuse,
    PoolTimeout,
    QueuePool,
    SyncPool,
    create_pool,
    max_len,
)

REUSING = ["sync", "freelist", "bounded", "locked", "queue"]


class Obj:
    def __init__(self) -> None:
        self.dirty = False


def make(strategy, **options):
    if strategy == "sync":
        options.setdefault("sharded", False)
    return create_pool(strategy, Obj, **options)


@pytest.mark.parametrize("strategy", [*REUSING, "sync-sharded"])
def test_pool_hands_back_the_object_that_was_put(strategy):
    pool = create_pool("sync", Obj, sharded=True) if strategy == "sync-sharded" else make(strategy)
    first = pool.get()
    pool.put(first)
    assert pool.get() is first
    assert pool.stats().misses == 1


def test_none_never_reuses():
    pool = NoPool(Obj)
    first = pool.get()
    pool.put(first)
    second = pool.get()
    assert second is not first
    assert pool.stats().misses == 2
    assert pool.stats().retained == 0


@pytest.mark.parametrize("strategy", [*REUSING, "sync-sharded"])
def test_reset_runs_once_per_reuse_and_never_on_new_objects(strategy):
    calls = []
    options = {"reset": calls.append}
    pool = (
        create_pool("sync", Obj, sharded=True, **options)
        if strategy == "sync-sharded"
        else make(strategy, **options)
    )
    a = pool.get()
    assert calls == []
    pool.put(a)
    assert calls == []
    assert pool.get() is a
    assert calls == [a]
    pool.put(a)
    pool.get()
    assert calls == [a, a]


@pytest.mark.parametrize("strategy", ["sync", "freelist", "locked", "queue"])
def test_accept_hook_drops_refused_objects(strategy):
    pool = create_pool(strategy, bytearray, accept=max_len(16))
    small, big = bytearray(8), bytearray(64)
    pool.put(small)
    pool.put(big)
    stats = pool.stats()
    assert stats.drops == 1
    assert stats.retained == 1
    assert pool.get() is small


def test_bounded_pool_drops_refused_objects_and_frees_their_slot():
    pool = BoundedPool(lambda: bytearray(64), max_size=1, accept=max_len(16), timeout=0.1)
    buf = pool.get()
    pool.put(buf)
    assert pool.stats().drops == 1
    assert pool.get() is not buf  # the slot was freed: a new one could be made


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_borrow_returns_the_object_even_when_the_block_raises(strategy):
    pool = create_pool(strategy, Obj)
    with pytest.raises(RuntimeError):
        with pool.borrow() as obj:
            raise RuntimeError("boom")
    if strategy != "none":
        assert pool.get() is obj


def test_freelist_never_retains_more_than_max_retained():
    pool = FreeListPool(Obj, max_retained=3, counting=True)
    objs = [pool.get() for _ in range(10)]
    for o in objs:
        pool.put(o)
    stats = pool.stats()
    assert stats.retained == 3
    assert stats.evicted == 7
    # The warmest (last put) objects stay.
    assert {id(pool.get()) for _ in range(3)} == {id(o) for o in objs[-3:]}


def test_locked_and_queue_pools_drop_beyond_max_retained():
    for cls in (LockedPool, QueuePool):
        pool = cls(Obj, max_retained=2)
        objs = [pool.get() for _ in range(5)]
        for o in objs:
            pool.put(o)
        assert pool.stats().retained == 2
        assert pool.stats().drops == 3


def test_counting_mode_counts_gets_and_puts():
    pool = SyncPool(Obj, counting=True, sharded=False)
    a = pool.get()
    pool.put(a)
    pool.get()
    stats = pool.stats()
    assert (stats.gets, stats.puts, stats.misses, stats.hits) == (2, 1, 1, 1)
    assert stats.hit_rate == 0.5


def test_uncounted_pools_say_so_instead_of_guessing():
    stats = SyncPool(Obj).stats()
    assert stats.gets is None and stats.puts is None and stats.hit_rate is None


def test_sync_pool_without_new_returns_none_when_empty():
    assert SyncPool().get() is None


def test_clear_releases_everything_retained():
    pool = SyncPool(Obj, sharded=False)
    pool.put(Obj())
    pool.put(Obj())
    pool.clear()
    assert pool.stats().retained == 0
    assert pool.stats().cleared == 2


def test_bounded_pool_times_out_when_every_object_is_out():
    pool = BoundedPool(Obj, max_size=2)
    pool.get(), pool.get()
    start = time.monotonic()
    with pytest.raises(PoolTimeout):
        pool.get(timeout=0.05)
    assert time.monotonic() - start >= 0.05
    stats = pool.stats()
    assert (stats.timeouts, stats.waits, stats.in_use) == (1, 1, 2)
    assert stats.wait_seconds >= 0.05


def test_bounded_pool_wakes_a_waiter_when_an_object_comes_back():
    pool = BoundedPool(Obj, max_size=1)
    held = pool.get()
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.get(timeout=5)))
    waiter.start()
    time.sleep(0.05)
    pool.put(held)
    waiter.join(5)
    assert got == [held]
    assert pool.stats().misses == 1


def test_bounded_pool_close_disposes_idle_objects_and_refuses_gets():
    disposed = []
    pool = BoundedPool(Obj, max_size=2, dispose=disposed.append)
    a, b = pool.get(), pool.get()
    pool.put(a)
    pool.close()
    assert disposed == [a]
    with pytest.raises(PoolClosed):
        pool.get()
    pool.put(b)  # returned after close: disposed of, not retained
    assert disposed == [a, b]
    assert pool.stats().retained == 0


def test_bounded_pool_close_wakes_waiters_with_pool_closed():
    pool = BoundedPool(Obj, max_size=1)
    pool.get()
    errors = []

    def wait():
        try:
            pool.get(timeout=5)
        except PoolClosed as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.05)
    pool.close()
    t.join(5)
    assert len(errors) == 1


def test_bounded_pool_refuses_a_double_put():
    pool = BoundedPool(Obj, max_size=2)
    a = pool.get()
    pool.put(a)
    with pytest.raises(PoolMisuse):
        pool.put(a)


def test_bounded_pool_gives_the_slot_back_when_new_raises():
    calls = []

    def new():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("db down")
        return Obj()

    pool = BoundedPool(new, max_size=1, timeout=0.1)
    with pytest.raises(ConnectionError):
        pool.get()
    assert isinstance(pool.get(), Obj)


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown pool strategy 'nope'"):
        create_pool("nope", Obj)


# Go's GC semantics -------------------------------------------------------------------------------


@pytest.mark.parametrize("sharded", [False, True])
def test_sync_pool_object_survives_one_full_collection_in_the_victim_cache(sharded):
    pool = SyncPool(Obj, sharded=sharded)
    obj = pool.get()
    pool.put(obj)
    gc.collect()
    assert pool.get() is obj
    assert pool.stats().victim_hits == 1


@pytest.mark.parametrize("sharded", [False, True])
def test_sync_pool_object_is_gone_after_two_full_collections(sharded):
    pool = SyncPool(Obj, sharded=sharded)
    obj = pool.get()
    pool.put(obj)
    gc.collect()
    gc.collect()
    assert pool.get() is not obj
    stats = pool.stats()
    assert stats.misses == 2
    assert stats.gc_dropped >= 1
    assert stats.gc_clears >= 2


def test_sync_pool_clears_for_callers_that_cached_get_and_put():
    pool = SyncPool(Obj, sharded=False)
    get, put = pool.get, pool.put
    obj = get()
    put(obj)
    gc.collect()
    assert get() is obj  # from the victim cache
    put(obj)
    gc.collect()
    gc.collect()
    assert get() is not obj


def test_sync_pool_young_collections_do_not_clear_it():
    pool = SyncPool(Obj, sharded=False)
    obj = pool.get()
    pool.put(obj)
    gc.collect(0)
    gc.collect(1)
    assert pool.get() is obj
    assert pool.stats().victim_hits == 0


def test_sharded_sync_pool_gives_each_thread_its_own_get_and_put():
    pool = SyncPool(Obj, sharded=True)
    mine = (pool.get, pool.put)
    assert pool.get is mine[0] and pool.put is mine[1]  # read again in one thread: the same
    theirs = []
    t = threading.Thread(target=lambda: theirs.append((pool.get, pool.put)))
    t.start()
    t.join()
    assert theirs[0][0] is not mine[0] and theirs[0][1] is not mine[1]
    obj = mine[0]()
    theirs[0][1](obj)  # any thread may call any thread's functions: put into the other's shard
    assert mine[0]() is obj  # ... and this thread steals it back


def test_sync_pool_steals_from_other_threads():
    pool = SyncPool(Obj, sharded=True)
    objs = []

    def producer():
        made = [pool.get() for _ in range(3)]
        objs.extend(made)
        for o in made:
            pool.put(o)

    t = threading.Thread(target=producer)
    t.start()
    t.join()
    # This thread has no shard contents of its own: it must steal the other thread's.
    got = [pool.get() for _ in range(2)]
    assert all(any(g is o for o in objs) for g in got)
    assert pool.stats().misses == 3


def test_sync_pool_is_collected_when_nothing_holds_it():
    import weakref

    pool = SyncPool(Obj)
    ref = weakref.ref(pool)
    del pool
    gc.collect()
    assert ref() is None
