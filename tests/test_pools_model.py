"""Hypothesis stateful tests: each strategy against a simple model of what it must do."""

from __future__ import annotations

import gc
import itertools

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from poolbench.pools import BoundedPool, FreeListPool, LockedPool, NoPool, PoolTimeout, QueuePool, SyncPool


class Obj:
    serial = itertools.count()

    def __init__(self) -> None:
        self.id = next(Obj.serial)


class PoolMachine(RuleBasedStateMachine):
    """Model: a LIFO list of idle objects; objects out; how many were created."""

    bound: int | None = None  # retained at most this many
    evicts_oldest = False  # when full: drop the oldest idle (freelist) or the incoming one

    def make(self):
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.resets: list[Obj] = []
        self.pool = self.make()
        self.idle: list[Obj] = []
        self.out: list[Obj] = []
        self.created = 0

    def expect_get(self) -> Obj | None:
        return self.idle.pop() if self.idle else None

    @rule()
    def get(self):
        expected = self.expect_get()
        obj = self.pool.get()
        if expected is None:
            self.created += 1
            assert all(obj is not o for o in self.out)
        else:
            assert obj is expected
            assert self.resets[-1] is obj
        self.out.append(obj)

    @precondition(lambda self: self.out)
    @rule(data=st.data())
    def put(self, data):
        obj = self.out.pop(data.draw(st.integers(0, len(self.out) - 1)))
        self.pool.put(obj)
        self.idle.append(obj)
        if self.bound is not None and len(self.idle) > self.bound:
            self.idle.pop(0 if self.evicts_oldest else -1)

    @invariant()
    def counters_match_the_model(self):
        stats = self.pool.stats()
        assert stats.misses == self.created
        assert stats.retained == len(self.idle)


class SyncPoolMachine(PoolMachine):
    """Automatic collections are off while it runs: only the rule's collections may move objects."""

    def make(self):
        gc.disable()
        self.victim: list[Obj] = []
        return SyncPool(Obj, reset=self.resets.append, sharded=False)

    def expect_get(self):
        if self.idle:
            return self.idle.pop()
        return self.victim.pop() if self.victim else None

    def teardown(self):
        gc.enable()

    @rule()
    def full_collection(self):
        gc.collect()
        self.victim = self.idle
        self.idle = []

    @invariant()
    def counters_match_the_model(self):
        stats = self.pool.stats()
        assert stats.misses == self.created
        assert stats.retained == len(self.idle) + len(self.victim)


class ShardedSyncPoolMachine(SyncPoolMachine):
    """One thread's shard behaves as the unsharded pool: newest first, then the victim cache."""

    def make(self):
        gc.disable()
        self.victim = []
        return SyncPool(Obj, reset=self.resets.append, sharded=True)


class FreeListMachine(PoolMachine):
    bound = 3
    evicts_oldest = True

    def make(self):
        return FreeListPool(Obj, max_retained=3, reset=self.resets.append)


class LockedMachine(PoolMachine):
    bound = 3

    def make(self):
        return LockedPool(Obj, max_retained=3, reset=self.resets.append)


class QueueMachine(PoolMachine):
    bound = 3

    def make(self):
        return QueuePool(Obj, max_retained=3, reset=self.resets.append)


class BoundedMachine(PoolMachine):
    def make(self):
        return BoundedPool(Obj, max_size=3, timeout=0, reset=self.resets.append)

    @precondition(lambda self: len(self.out) < 3)
    @rule()
    def get(self):
        super().get()

    @precondition(lambda self: len(self.out) == 3)
    @rule()
    def get_when_exhausted_times_out(self):
        try:
            self.pool.get(timeout=0)
        except PoolTimeout:
            return
        raise AssertionError("a fourth object was handed out")

    @invariant()
    def never_more_than_max_size_exist(self):
        assert len(self.out) + len(self.idle) <= 3
        assert self.pool.stats().in_use == len(self.out)


class NoPoolMachine(PoolMachine):
    def make(self):
        return NoPool(Obj)

    def expect_get(self):
        return None

    @rule(data=st.data())
    @precondition(lambda self: self.out)
    def put(self, data):
        obj = self.out.pop(data.draw(st.integers(0, len(self.out) - 1)))
        self.pool.put(obj)


RUN = settings(max_examples=40, stateful_step_count=40, deadline=None)


def as_test(machine):
    case = machine.TestCase
    case.settings = RUN
    return case


TestSyncPool = as_test(SyncPoolMachine)
TestShardedSyncPool = as_test(ShardedSyncPoolMachine)
TestFreeListPool = as_test(FreeListMachine)
TestLockedPool = as_test(LockedMachine)
TestQueuePool = as_test(QueueMachine)
TestBoundedPool = as_test(BoundedMachine)
TestNoPool = as_test(NoPoolMachine)
