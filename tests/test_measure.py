"""Measurement logic with a fake clock: calibration, interleaving, ratios, passes."""

from __future__ import annotations

import threading
from itertools import repeat

import pytest

from poolbench.counting import count_allocations, count_calls, count_strategies
from poolbench.measure import measure_group, same_loops
from poolbench.pools import SyncPool
from poolbench.scenario import Scenario
from poolbench.settings import Settings
from poolbench.strategies import build_strategies
from poolbench.timing import Team, calibrate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0
        self.lock = threading.Lock()

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: float) -> None:
        with self.lock:
            self.now += int(ns)


class Costed(Scenario):
    """Costs 100 ns per op unpooled and 40 ns pooled, on the fake clock."""

    name = "costed"
    clock: FakeClock

    def new(self):
        return []

    def use(self, obj):
        pass

    def run(self, n, get, put):
        self.calls.append((n, put is None))
        self.clock.advance(n * (100 if put is None else 40))


class HalfKept(Scenario):
    """A pool that accepts every other object back: a hit rate of one half."""

    name = "half-kept"

    def setup(self):
        self.n = 0

    def new(self):
        return []

    def use(self, obj):
        pass

    def accept(self, obj):
        self.n += 1
        return self.n % 2 == 0


SETTINGS = Settings(
    min_processes=1,
    max_processes=1,
    max_seconds=0,
    values=4,
    warmups=1,
    min_time=0.001,
    latency_steps=3,
    gc_values=1,
    count_ops=10,
)


def measure(threads=1, pools=("none", "sync"), kind=Costed):
    clock = FakeClock()
    scenario = kind()
    scenario.clock = clock
    scenario.calls = []
    strategies = build_strategies(scenario, list(pools), threads)
    results = measure_group(
        scenario,
        strategies,
        threads,
        SETTINGS,
        clock=clock,
        reference=lambda n: clock.advance(n * 50),
    )
    return results, scenario


def test_calibration_doubles_until_one_value_lasts_min_time():
    spent = []

    def time_ops(n):
        spent.append(n)
        return n * 100

    assert calibrate(time_ops, 1, 1_000_000) == 16384
    assert spent[:4] == [1, 1, 2, 4]  # a discarded first call, then doubling
    assert spent[-2:] == [16384, 32768]  # the count found, checked against twice as many


def test_calibration_goes_past_a_fixed_cost_that_makes_a_few_operations_look_long():
    # 3 ms of waking threads whatever the count, then 100 ns an operation: a value of 1 op lasts
    # past 2 ms, but twice as many ops take no longer, so the count keeps doubling.
    found = calibrate(lambda n: 3_000_000 + 100 * n, 1, 2_000_000)
    assert found >= 16384


def test_calibration_keeps_whole_batches():
    assert calibrate(lambda n: n * 10, 1000, 50_000) % 1000 == 0


def test_values_are_nanoseconds_per_operation_and_ratios_come_from_them():
    results, _ = measure()
    assert results["none"].run.values == [100.0] * 4
    assert results["sync"].run.values == [40.0] * 4
    assert len(results["none"].run.warmups) == 1


class Apart(Costed):
    """Costs 2,000 ns per op unpooled and 40 ns pooled: a 50x speedup."""

    def run(self, n, get, put):
        self.calls.append((n, put is None))
        self.clock.advance(n * (2000 if put is None else 40))


def test_strategies_of_similar_speed_time_the_same_operations_a_value():
    # Calibrated alone, none (100 ns) would get 16,384 ops a value and sync (40 ns) 32,768: a
    # value's fixed cost would then weigh twice as much per op in none's values as in sync's.
    results, _ = measure()
    assert results["none"].run.loops == results["sync"].run.loops == 32768


def test_strategies_far_apart_keep_loops_of_their_own():
    results, _ = measure(kind=Apart)
    assert (results["none"].run.loops, results["sync"].run.loops) == (512, 32768)
    assert results["none"].run.values == [2000.0] * 4


def test_same_loops_takes_the_largest_within_eight_times_and_leaves_pinned_loops_alone():
    assert same_loops({"none": 1024, "sync": 4096}) == {"none": 4096, "sync": 4096}
    assert same_loops({"none": 8192, "sync": 1024}) == {"none": 8192, "sync": 8192}
    assert same_loops({"none": 16, "sync": 256}) == {"none": 16, "sync": 256}
    assert same_loops({"none": 16}) == {"none": 16}
    assert same_loops({}) == {}


def test_the_strategy_that_goes_first_rotates_from_round_to_round():
    results, scenario = measure()
    sync_loops = results["sync"].run.loops
    # Calibration ends with sync's call at its final loop count and one at twice that (the
    # check); then come one warmup round and four value rounds of two timed calls each. The
    # strategy timed first alternates (none, sync, none, ...), so neither always runs right
    # after the other has warmed the caches.
    start = scenario.calls.index((2 * sync_loops, False)) + 1
    rounds = [unpooled for _, unpooled in scenario.calls[start : start + 10]]
    assert rounds == [True, False, False, True, True, False, False, True, True, False]


def test_with_threads_time_per_op_is_wall_time_over_every_threads_operations():
    results, scenario = measure(threads=4)
    # Four threads each run n ops of 100 ns; the fake clock adds them up as if run one after
    # another (the GIL), so wall time / (4 n) is still 100 ns.
    assert results["none"].run.values == [100.0] * 4
    loops = results["none"].run.loops
    timed = sum(1 for n, unpooled in scenario.calls if n == loops and unpooled)
    assert timed >= 4 * 5 and timed % 4 == 0  # every round (1 warmup + 4 values) on all four threads


def test_each_round_times_the_reference_workload():
    results, _ = measure()
    assert results["none"].run.reference == [50.0] * 4


def test_pooled_cells_report_the_hit_rate_of_their_gc_pass_and_pool_stats():
    scenario = HalfKept()
    scenario.setup()
    strategies = build_strategies(scenario, ["none", "sync"], 1)
    results = measure_group(scenario, strategies, 1, SETTINGS)  # the real clock
    assert results["none"].run.hit_rate is None
    # The pool keeps every other object it is given back, so about half the gets miss.
    assert 0.4 <= results["sync"].run.hit_rate <= 0.6
    assert results["sync"].pool_stats["strategy"] == "sync"


def test_each_thread_of_a_team_uses_its_own_shard_of_a_sharded_pool():
    class Listy(Scenario):
        name = "listy"

        def new(self):
            return []

        def use(self, obj):
            pass

        def pool_options(self, strategy, threads):
            return {"sharded": True}  # the free-threaded default, on any build

    scenario = Listy()
    strategies = build_strategies(scenario, ["none", "sync"], 2)  # get/put read by this thread
    pool = strategies[1].pool
    assert isinstance(pool, SyncPool) and pool.sharded
    settings = Settings(
        min_processes=1,
        max_processes=1,
        max_seconds=0,
        values=2,
        warmups=0,
        min_time=0.0001,
        latency_steps=5,
        gc_values=1,
        count_ops=10,
    )
    measure_group(scenario, strategies, 2, settings)
    # This thread's shard (it read get/put above), and one for each of the team's two threads.
    assert len(pool._core.shards) == 3


def test_latency_samples_are_per_operation():
    results, _ = measure()
    assert results["none"].latency == [100.0] * 3


def test_team_runs_the_task_on_every_thread_and_reraises_errors():
    team = Team(3, FakeClock())
    seen = []
    team.run(seen.append)
    assert sorted(seen) == [0, 1, 2]

    def boom(index):
        raise ValueError(f"thread {index}")

    with pytest.raises(ValueError):
        team.run(boom)
    team.close()


def test_allocation_counting_sees_a_list_per_operation():
    def run():
        for _ in repeat(None, 1000):
            [None] * 4

    counted = count_allocations(Team(1, FakeClock()), run)
    assert counted is not None
    assert 2000 <= counted["allocations"] <= 2100


def test_frames_made_by_tracing_are_not_counted_as_allocations():
    def call(n):
        return n

    def work():
        for _ in repeat(None, 1000):
            call(1)

    team = Team(1, FakeClock())
    traced = count_allocations(team, work)
    frames, _ = count_calls(team, work)
    # Under memray every Python call shows up as an allocation (its frame object).
    assert traced["allocations"] >= 1000
    assert frames == 1001  # work itself + 1,000 calls
    assert traced["allocations"] - frames < 20


class SmallBuffer(Scenario):
    """A known answer: ``bytearray(100)`` is 2 allocator calls and 157 bytes on CPython 3.11."""

    name = "small-buffer"

    def new(self):
        return bytearray(100)

    def use(self, obj):
        pass


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_allocation_counts_are_exact_at_every_thread_count(threads):
    import time

    scenario = SmallBuffer()
    team = Team(threads, time.perf_counter_ns)
    try:
        strategies = build_strategies(scenario, ["none", "sync"], threads)
        found = [count_strategies(scenario, strategies, team, 200) for _ in range(2)]
    finally:
        team.close()
    for counts in found:  # the same answer twice in one process, after the first
        none, sync = counts["none"].allocs, counts["sync"].allocs
        assert none.allocations / none.ops == 2.0
        assert none.bytes / none.ops == 157.0
        assert (sync.allocations, sync.bytes) == (0, 0)
        assert counts["none"].warnings == []


def test_a_negative_leftover_after_the_harness_is_a_warning_not_a_silent_zero(monkeypatch):
    import poolbench.counting as counting

    real = counting.counted
    calls = []

    def inflated(team, run, n, batch, prefill=None):
        found = real(team, run, n, batch, prefill)
        calls.append(found)
        if len(calls) <= 2:  # the two harness passes: pretend the harness costs a lot
            found["allocations"] += 10_000
        return found

    monkeypatch.setattr(counting, "counted", inflated)
    team = Team(1, FakeClock())
    scenario = SmallBuffer()
    counts = count_strategies(scenario, build_strategies(scenario, ["none"], 1), team, 10)
    assert counts["none"].allocs.allocations == 0
    assert "harness subtraction left" in counts["none"].warnings[0]


def test_a_job_and_an_answer_survive_the_trip_through_json():
    import json

    from poolbench.loading import ScenarioRef
    from poolbench.protocol import Answer, MeasureJob, job_from_json

    job = MeasureJob(ScenarioRef("tiny", "folder", "/x/tiny.py", "Tiny"), {"batch": 1}, 2, ("none", "sync"),
                     SETTINGS, layout_seed=7, loops={"none": 8, "sync": 8, "reference": 4})  # fmt: skip
    assert job_from_json(json.loads(json.dumps(job.to_json()))) == job
    results, _ = measure()
    answer = Answer(ok=True, pools=results, version="x")
    again = Answer.from_json(json.loads(json.dumps(answer.to_json())))
    assert again == answer


def test_a_worker_of_another_protocol_version_is_refused():
    from poolbench.protocol import Answer, ProtocolError

    with pytest.raises(ProtocolError):
        Answer.from_json({"protocol": 1, "ok": True, "pools": {}})


def test_a_malformed_answer_is_refused_naming_the_field_as_a_result_file_would_be():
    import json

    from poolbench.protocol import Answer, ProtocolError
    from poolbench.result import AllocStats

    results, _ = measure()
    answer = Answer(ok=True, pools=results, counts={"none": AllocStats(10, 20, 300, 4096)}, version="x")
    data = json.loads(json.dumps(answer.to_json()))
    assert Answer.from_json(data) == answer
    data["pools"]["sync"]["run"]["values"][0] = -1.0
    with pytest.raises(ProtocolError, match=r"pools\.sync\.run\.values\[0\]: must not be negative"):
        Answer.from_json(data)
    data = json.loads(json.dumps(answer.to_json()))
    del data["counts"]["none"]["bytes"]
    with pytest.raises(ProtocolError, match=r"counts\.none: missing 'bytes'"):
        Answer.from_json(data)
