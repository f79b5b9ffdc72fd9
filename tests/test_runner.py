"""Real worker subprocesses: isolation, failures, timeouts, and what gets saved."""

from __future__ import annotations

import json

import pytest

from poolbench import storage
from poolbench.discovery import discover
from poolbench.errors import ResultExistsError, UsageError
from poolbench.session import RunRequest, run_session


def request(scenarios_ok, tmp_path, *names, **overrides):
    options = {
        "scenarios": names,
        "threads": (1,),
        "mode": "smoke",
        "out": tmp_path / "out.json",
        "scenario_dirs": (scenarios_ok,),
        "timeout": 20,
    }
    options.update(overrides)
    return RunRequest(**options)


def test_a_run_measures_every_pool_and_saves_a_complete_file(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "tiny", pools=("sync", "freelist")))
    saved = storage.load(tmp_path / "out.json")
    assert saved.complete
    assert [c.pool for c in saved.cells] == ["none", "sync", "freelist"]
    for cell in saved.cells:
        assert cell.status == "ok"
        assert all(len(run.values) == 3 for run in cell.runs)
        assert cell.allocs is not None and cell.allocs.ops > 0
        assert cell.gc is not None
    sync = saved.cells[1]
    assert len(sync.ratios) == 3
    # Each pool shares its process with none only, never with another pool.
    assert [r.partner for r in saved.cells[0].runs] == ["sync", "freelist"]
    assert [r.partner for r in sync.runs] == ["none"]
    seeds = [r.layout_seed for c in saved.cells for r in c.runs]
    assert len(set(seeds)) == 2  # one randomized layout per process
    assert sync.hit_rate is not None and sync.hit_rate > 0.9
    assert outcome.result.metadata["python_version"]


def test_a_scenario_that_raises_fails_its_cells_and_the_others_are_measured(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "raises", "tiny"))
    by_scenario = {(c.scenario, c.pool): c for c in outcome.result.cells}
    failed = by_scenario[("raises", "sync")]
    assert failed.status == "failed"
    assert "scenario bug on purpose" in failed.error
    assert by_scenario[("tiny", "sync")].status == "ok"
    assert storage.load(tmp_path / "out.json").complete


def test_a_scenario_that_hangs_is_ended_at_the_timeout(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "hangs", "tiny", timeout=2))
    hung = [c for c in outcome.result.cells if c.scenario == "hangs"]
    assert hung and all(c.status == "failed" and "timed out after 2 s" in c.error for c in hung)
    assert all(c.status == "ok" for c in outcome.result.cells if c.scenario == "tiny")


def test_a_worker_that_dies_is_reported_with_its_exit_code(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "dies"))
    assert outcome.result.cells and all("exited with code 7" in c.error for c in outcome.result.cells)


def test_a_scenario_printing_on_stdout_does_not_corrupt_the_answer(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "chatty"))
    assert all(c.status == "ok" for c in outcome.result.cells)


def test_parameter_sweeps_make_one_group_per_value(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "tiny", params=("size=4,16",)))
    assert sorted({c.params["size"] for c in outcome.result.cells}) == [4, 16]


def test_existing_output_is_never_overwritten_without_force(scenarios_ok, tmp_path):
    (tmp_path / "out.json").write_text("precious")
    with pytest.raises(ResultExistsError):
        run_session(request(scenarios_ok, tmp_path, "tiny"))
    assert (tmp_path / "out.json").read_text() == "precious"
    run_session(request(scenarios_ok, tmp_path, "tiny", force=True))
    assert json.loads((tmp_path / "out.json").read_text())["complete"] is True


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"pools": ("sync", "turbo")}, "unknown pool strategy 'turbo'"),
        ({"threads": (0,)}, "bad thread count 0"),
        ({"params": ("colour=red",)}, "no selected scenario has a parameter 'colour'"),
        ({"params": ("size=big",)}, "size=big"),
        ({"python": "/no/such/python"}, "cannot run --python"),
    ],
)
def test_bad_requests_fail_before_anything_runs(scenarios_ok, tmp_path, overrides, message):
    with pytest.raises(UsageError, match=message):
        run_session(request(scenarios_ok, tmp_path, "tiny", **overrides))
    assert not (tmp_path / "out.json").exists()


def test_unknown_scenario_is_a_usage_error(scenarios_ok, tmp_path):
    with pytest.raises(UsageError, match="unknown scenario 'nope'"):
        run_session(request(scenarios_ok, tmp_path, "nope"), discovery=discover([scenarios_ok]))


def test_a_pair_whose_processes_split_gets_its_whole_budget_and_an_unstable_verdict(scenarios_ok, tmp_path):
    from poolbench.planning import plan
    from poolbench.report import report
    from poolbench.result import Result
    from poolbench.runner import measure_groups
    from poolbench.settings import Settings

    found = discover([scenarios_ok])
    counter = tmp_path / "counter"
    groups = plan(found.lookup(["bimodal"]), ["sync"], [1], {"counter": [str(counter)]})
    settings = Settings(min_processes=3, max_processes=6, max_seconds=60, values=6, warmups=1, min_time=0.002,
                        latency_steps=3, gc_values=1, count_ops=10, count_processes=1)  # fmt: skip
    cells = measure_groups(groups, settings, timeout=60)
    sync = next(c for c in cells if c.pool == "sync")
    assert len(sync.runs) == 6  # 3 at least, then more while the processes disagree, up to 6
    result = Result(metadata={}, config={"settings": settings.to_json()}, cells=cells, complete=True)
    shown = next(r for r in report(result) if r.cell.pool == "sync")
    assert shown.speedup.verdict == "unstable"
    modes = shown.speedup.stability.modes
    assert round(sum(m.share for m in modes if m.value < 1), 2) == 0.5  # every other process
    assert round(sum(m.share for m in modes if m.value > 1), 2) == 0.5
    # Which side split, by how much, and a seed that gives every process that mode (here both
    # strategies' times move, by about as much: either may be named).
    assert "'s time x" in shown.split and "--layout-seed" in shown.split


def test_a_pair_that_settles_stops_at_the_minimum(scenarios_ok, tmp_path):
    from poolbench.planning import plan
    from poolbench.runner import measure_groups
    from poolbench.settings import Settings

    found = discover([scenarios_ok])
    groups = plan(found.lookup(["tiny"]), ["sync"], [1], {"size": ["100000"]})
    settings = Settings(min_processes=3, max_processes=8, max_seconds=60, values=8, warmups=1, min_time=0.002,
                        latency_steps=3, gc_values=1, count_ops=10, count_processes=1)  # fmt: skip
    cells = measure_groups(groups, settings, timeout=60)
    sync = next(c for c in cells if c.pool == "sync")
    # A ~1000x win settles at once, unless the first processes split into modes (sync's get/put
    # reads 117 or 208 ns from process to process, in about a third of these runs): a split keeps
    # the pair open, rightly, to tell the modes' shares. So: every look before the stop was
    # unsettled, and the stop was settled or the budget.
    from poolbench.verdict import looks_of, settled, speedup

    ratios = sync.ratios_by_run
    for k in range(settings.min_processes, len(ratios)):
        assert not settled(speedup(ratios[:k], looks_of(settings))), (k, ratios)
    assert len(ratios) == settings.max_processes or settled(speedup(ratios, looks_of(settings)))
    assert speedup(ratios, looks_of(settings)).verdict == "wins"


def test_each_pool_gets_the_peak_memory_of_its_own_pass(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "big-batch", pools=("sync",)))
    none, sync = outcome.result.cells
    mib = 1024 * 1024
    # 16 x 8 MiB alive at once on both paths; the none pass must not carry the sync pool's 128 MiB.
    for cell in (none, sync):
        assert cell.memory is not None and cell.memory.peak_reset
        assert 120 * mib < cell.memory.added_bytes < 150 * mib, cell.memory
    assert abs(none.memory.peak_bytes - sync.memory.peak_bytes) < 0.2 * sync.memory.peak_bytes


def test_cells_measured_on_a_free_threaded_build_say_what_their_gc_figures_mean():
    from poolbench.loading import ScenarioRef
    from poolbench.planning import Group
    from poolbench.protocol import Answer, StrategyFigures
    from poolbench.result import Cell, GcStats, MemoryStats, Run
    from poolbench.runner import FREE_THREADED_GC, _add, _add_counts, _Pair

    def figures():
        run = Run(8, [10.0], reference=[5.0], reference_loops=8, hit_rate=1.0, peak_rss_bytes=1 << 20)
        return StrategyFigures(run, [10.0], GcStats(100, [0, 0, 0], 0, 0, 1), MemoryStats(1 << 20, 0, True))

    group = Group(ScenarioRef("s", "folder", "/s.py", "S"), {"batch": 1}, 1, ("none", "sync"))
    cells = {p: Cell("s", p, 1, {"batch": 1}, status="pending") for p in group.pools}
    pair = _Pair(group, ("none", "sync"), cells)
    _add(
        pair,
        Answer(ok=True, pools={"none": figures(), "sync": figures()}, interpreter={"gil_enabled": False}),
        1,
    )
    counted = Answer(ok=True, not_counted="not counted: memray has no free-threaded build")
    _add_counts(pair, counted, seed=2)
    for cell in cells.values():
        assert cell.status == "ok"
        assert FREE_THREADED_GC in cell.warnings
        assert "not counted: memray has no free-threaded build" in cell.warnings
        assert cell.counts == []
