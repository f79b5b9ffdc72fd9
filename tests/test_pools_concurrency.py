"""8 threads hammering one pool: no object is ever held by two borrowers at once."""

from __future__ import annotations

import threading

import pytest

from poolbench.pools import create_pool

THREADS = 8
ROUNDS = 30_000


class Token:
    __slots__ = ("owner",)

    def __init__(self) -> None:
        self.owner = None


def hammer(pool, rounds=ROUNDS, threads=THREADS, hold=2):
    """Each thread takes ``hold`` objects, stamps them, checks the stamp, gives them back."""
    clashes = []
    start = threading.Barrier(threads)

    def work(me):
        get, put = pool.get, pool.put
        start.wait()
        for _ in range(rounds // hold):
            held = [get() for _ in range(hold)]
            for obj in held:
                if obj.owner is not None:
                    clashes.append((me, obj.owner))
                obj.owner = me
            for obj in held:
                if obj.owner != me:
                    clashes.append((me, obj.owner))
                obj.owner = None
                put(obj)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return clashes


@pytest.mark.parametrize(
    "strategy, options",
    [
        ("sync", {"sharded": False, "counting": True}),
        ("sync", {"sharded": True, "counting": True}),
        ("freelist", {"max_retained": 8, "counting": True}),
        ("bounded", {"max_size": THREADS * 2, "timeout": 30}),
        ("locked", {}),
        ("queue", {"counting": True}),
    ],
    ids=["sync", "sync-sharded", "freelist", "bounded", "locked", "queue"],
)
def test_no_object_is_handed_to_two_borrowers_and_counters_balance(strategy, options):
    pool = create_pool(strategy, Token, **options)
    assert hammer(pool) == []
    stats = pool.stats()
    total = THREADS * (ROUNDS // 2) * 2
    assert stats.gets == total
    assert stats.puts == total
    # Every object made is either idle in the pool now or was let go by a bound or a collection.
    let_go = stats.drops + (stats.evicted or 0) + stats.gc_dropped + stats.cleared
    assert stats.misses == stats.retained + let_go
    if strategy == "freelist":
        assert stats.retained <= 8
    if strategy == "bounded":
        assert stats.misses <= THREADS * 2
        assert stats.in_use == 0
