"""Result files: written atomically by one writer, read back with every field checked."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolbench import storage
from poolbench.errors import ResultExistsError, ResultFileError
from poolbench.result import AllocStats, Cell, GcStats, Result, Run

from .conftest import DATA


def sample() -> Result:
    cell = Cell(
        "s",
        "sync",
        1,
        {"batch": 1},
        runs=[Run(10, [1.0, 2.0], [3.0], [1.1, 1.2], per_1000_ops={"connections": 2.5})],
    )
    cell.gc = GcStats(100, [0, 0, 0], 0, 0)
    cell.allocs = AllocStats(100, 0, 0, 0)  # zero allocations: a real result, kept as is
    return Result({"python_version": "3.11"}, {"mode": "quick"}, [cell], complete=True)


def test_round_trip_keeps_raw_values_and_zeros(tmp_path):
    path = tmp_path / "r.json"
    storage.save(sample(), path)
    loaded = storage.load(path)
    assert loaded.cells[0].runs[0].values == [1.0, 2.0]
    assert loaded.cells[0].allocs.allocations == 0
    assert loaded.cells[0].runs[0].per_1000_ops == {"connections": 2.5}
    assert loaded.complete


def test_saving_never_overwrites_without_permission(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("keep me")
    with pytest.raises(ResultExistsError):
        storage.save(sample(), path)
    assert path.read_text() == "keep me"


def test_a_failed_write_leaves_the_earlier_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    storage.save(sample(), path)
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", broken_replace)
    with pytest.raises(ResultFileError, match="No space left"):
        storage.save(sample(), path, overwrite=True)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind


def test_the_committed_result_file_loads():
    result = storage.load(DATA / "quick-builtins.json")
    assert result.complete
    assert {c.scenario for c in result.cells} == {
        "bytes-buffer",
        "db-connections",
        "json-struct",
        "worker-tasks",
    }
    run = result.cells[1].runs[0]
    assert run.partner == "none" and run.layout_seed is not None and run.reference_loops


def test_a_format_1_file_still_loads_with_the_new_fields_empty():
    result = storage.load(DATA / "quick-builtins-v1.json")
    assert result.complete and result.cells
    assert all(r.layout_seed is None and r.partner is None for c in result.cells for r in c.runs)
    assert all(c.memory is None and c.warnings == [] for c in result.cells)


def test_seeds_partners_memory_and_warnings_survive_a_round_trip(tmp_path):
    result = storage.load(DATA / "quick-builtins.json")
    result.cells[0].warnings.append("a worker process was killed by SIGABRT; it was run again")
    storage.save(result, tmp_path / "r.json")
    again = storage.load(tmp_path / "r.json")
    assert again.cells[0].warnings == result.cells[0].warnings
    assert again.cells[1].memory == result.cells[1].memory
    assert [r.layout_seed for r in again.cells[1].runs] == [r.layout_seed for r in result.cells[1].runs]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "not valid JSON"),
        ('{"format": "poolbench-result", "version": 1, "cells": [', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"hello": 1}', "not a poolbench result file"),
        ('{"version": "1.0", "benchmarks": []}', "is a pyperf file"),
        ('{"format": "poolbench-result", "version": 99}', "version 99; this poolbench reads up to 5"),
        ('{"format": "poolbench-result", "version": 1}', "missing 'cells'"),
        (
            '{"format": "poolbench-result", "version": 1, "metadata": {}, "config": {}, "complete": true, '
            '"cells": [{"scenario": "s"}]}',
            "missing",
        ),
        (
            '{"format": "poolbench-result", "version": 1, "cells": [], "metadata": {}, "config": {}, '
            '"complete": NaN}',
            "not valid JSON",
        ),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ResultFileError, match=message):
        storage.load(path)


@pytest.mark.parametrize(
    "rates, message",
    [
        ('{"connections": -1}', "per_1000_ops.connections: must not be negative"),
        ('{"connections": "many"}', "expected a number, found str"),
        ('{"": 1}', "expected a short printable name"),
        ("[1]", "per_1000_ops: expected an object"),
    ],
)
def test_a_bad_counted_event_rate_names_its_field(tmp_path, rates, message):
    doc = json.loads(storage.dumps(sample()))
    doc["cells"][0]["runs"][0]["per_1000_ops"] = json.loads(rates)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultFileError, match=message):
        storage.load(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ResultFileError, match="no such file"):
        storage.load(tmp_path / "missing.json")


def _mutations():
    scalar = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=5), st.just([]), st.just({}),
    )  # fmt: skip
    return scalar


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_result_files_load_or_fail_with_a_result_file_error(tmp_path, data):
    doc = json.loads(storage.dumps(sample()))
    cell = doc["cells"][0]
    run = cell["runs"][0]
    target = data.draw(st.sampled_from([doc, cell, run, run["per_1000_ops"], cell["gc"], cell["allocs"]]))
    key = data.draw(st.sampled_from(sorted(target)))
    if data.draw(st.booleans()):
        del target[key]
    else:
        target[key] = data.draw(_mutations())
    text = json.dumps(doc, allow_nan=True)
    if data.draw(st.booleans()):
        text = text[: data.draw(st.integers(0, len(text)))]
    path = tmp_path / "fuzz.json"
    path.write_text(text)
    try:
        loaded = storage.load(path)
    except ResultFileError:
        return
    for c in loaded.cells:
        assert all(math.isfinite(v) for v in c.values)


def test_a_file_larger_than_any_result_is_refused_before_it_is_read(tmp_path):
    from poolbench.storage import MAX_FILE

    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # sparse: no disk used
        f.write(b"{")
        f.truncate(MAX_FILE + 1)
    with pytest.raises(ResultFileError, match="larger than any result file"):
        storage.load(huge)


def test_a_file_that_does_not_start_as_a_json_object_is_refused_from_its_first_bytes(tmp_path):
    odd = tmp_path / "odd.json"
    odd.write_bytes(b"\n  PK\x03\x04" + b"x" * 10_000)
    with pytest.raises(ResultFileError, match="expected a JSON object"):
        storage.load(odd)
