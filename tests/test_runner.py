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
        assert len(cell.values) == 3
        assert cell.allocs is not None and cell.allocs.ops > 0
        assert cell.gc is not None
    sync = saved.cells[1]
    assert len(sync.ratios) == 3
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
    assert all(c.status == "failed" and "timed out after 2 s" in c.error for c in hung)
    assert all(c.status == "ok" for c in outcome.result.cells if c.scenario == "tiny")


def test_a_worker_that_dies_is_reported_with_its_exit_code(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "dies"))
    assert all("exited with code 7" in c.error for c in outcome.result.cells)


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
