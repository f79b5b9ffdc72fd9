"""The doctor: every kind of misuse found at its call site; clean code reported clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poolbench.cli import app
from poolbench.diagnosis import diagnose
from poolbench.discovery import discover
from poolbench.pools import STRATEGIES, FreeListPool, SyncPool, checked

EXAMPLES = Path(__file__).parent.parent / "scenarios" / "examples"
runner = CliRunner()


def bug_lines():
    """scenario name -> the line numbers marked # BUG in its class."""
    lines = {}
    current = None
    for number, line in enumerate((EXAMPLES / "buggy.py").read_text().splitlines(), start=1):
        if line.strip().startswith("name = "):
            current = line.split("=", 1)[1].strip().strip('"')
        if "# BUG" in line and current:
            lines.setdefault(current, []).append(number)
    return lines


@pytest.mark.parametrize(
    "scenario, kind",
    [
        ("bug-leak", "leak"),
        ("bug-double-put", "double-put"),
        ("bug-foreign-put", "foreign-put"),
        ("bug-dirty-reuse", "dirty-reuse"),
        ("bug-use-after-put", "use-after-put"),
        ("bug-pinned-bytes", "pinned-bytes"),
        ("bug-kept-reference", "use-after-put"),
    ],
)
@pytest.mark.parametrize("pool", ["sync", "freelist", "locked"])
def test_each_buggy_example_is_found_with_its_kind_and_call_site(scenario, kind, pool):
    found = discover([EXAMPLES])
    [diagnosis] = diagnose(found.lookup([scenario]), [pool], ops=200)
    assert diagnosis.error is None
    kinds = {f.kind for f in diagnosis.findings}
    assert kinds == {kind}, diagnosis.findings
    [finding] = diagnosis.findings
    lines = bug_lines()[scenario]
    assert finding.site.startswith(str(EXAMPLES / "buggy.py"))
    assert int(finding.site.split(":")[1].split()[0]) in lines
    assert finding.hint


def test_every_builtin_scenario_is_clean_under_every_pool():
    found = discover()
    builtins = found.builtins()
    assert set(builtins) >= {"bytes-buffer", "json-struct", "worker-tasks", "db-connections"}
    pools = [p for p in STRATEGIES if p != "none"]
    results = diagnose(found.lookup(builtins), pools, ops=500)
    assert len(results) == len(builtins) * len(pools)
    assert [(d.scenario, d.pool, d.findings, d.error) for d in results if d.findings or d.error] == []


def test_doctor_command_exit_codes_and_json_kinds():
    clean = runner.invoke(app, ["doctor", "bytes-buffer"])
    assert clean.exit_code == 0 and "no misuse found" in clean.output
    buggy = runner.invoke(
        app, ["doctor", "--scenarios-dir", str(EXAMPLES), "bug-leak", "bug-double-put", "--format", "json"]
    )
    assert buggy.exit_code == 1
    kinds = {f["kind"] for f in json.loads(buggy.stdout)["findings"]}
    assert kinds == {"leak", "double-put"}


@pytest.mark.parametrize("args, words", [(["doctor", "nope"], "unknown scenario"), (["doctor", "--race", "2"], "--race"),
                                         (["doctor", "--ops", "0"], "--ops")])  # fmt: skip
def test_doctor_bad_input_exits_2(args, words):
    out = runner.invoke(app, args)
    assert out.exit_code == 2 and words in out.output


def test_unchecked_pools_keep_their_fast_get_and_put():
    pool = SyncPool(list, sharded=False)
    assert pool.put.__self__.__class__.__name__ == "deque"  # deque.append itself
    assert not hasattr(pool, "checker")


def test_double_put_is_not_passed_on_so_no_object_goes_to_two_borrowers():
    pool = checked(FreeListPool(list), quarantine=0)  # no quarantine: the object comes straight back
    a = pool.get()
    pool.put(a)
    pool.put(a)
    assert pool.get() is a
    assert pool.get() is not a
    assert sorted({f.kind for f in pool.checker.finish()}) == ["double-put", "leak"]


def test_race_mode_drops_puts():
    pool = checked(SyncPool(object, sharded=False), race=0.5, quarantine=0)
    same = 0
    obj = pool.get()
    for _ in range(200):
        pool.put(obj)
        again = pool.get()
        same += again is obj
        obj = again
    assert 60 < same < 140


def test_environment_variable_checks_an_unchanged_application():
    env = {**os.environ, "POOLBENCH_CHECK": "1", "POOLBENCH_CHECK_RACE": "0.25"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "race_app.py")], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0
    assert "different object back" in done.stdout
    assert "leak x1 at" in done.stderr and "race_app.py:24" in done.stderr
    assert "dirty-reuse" in done.stderr
    plain = subprocess.run([sys.executable, str(EXAMPLES / "race_app.py")], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if not k.startswith("POOLBENCH_CHECK")})  # fmt: skip
    assert plain.stderr == "" and "0 times out of 100" in plain.stdout


def test_findings_point_at_the_scenario_file_even_when_its_run_is_poolbenchs(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "dirty.py").write_text(
        "from poolbench import Scenario\n"
        "\n"
        "\n"
        "class Dirty(Scenario):\n"
        '    name = "dirty-outside"\n'
        "\n"
        "    def new(self):\n"
        "        return [0] * 4\n"
        "\n"
        "    def use(self, obj):  # no reset: every reuse is dirty\n"
        "        obj[0] += 1\n"
    )
    result = runner.invoke(
        app, ["doctor", "dirty-outside", "--scenarios-dir", str(folder), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    assert findings and all(f["kind"] == "dirty-reuse" for f in findings)
    assert all(f["site"] == str(folder / "dirty.py") + ":10" and f["function"] == "use" for f in findings), (
        findings
    )
    assert all(f["scenario"] == "dirty-outside" and f["pool"] == "sync" and f["count"] >= 1 for f in findings)
    assert not any("site-packages" in f["site"] or "typer" in f["site"] for f in findings)


def test_the_quarantine_catches_a_write_through_a_reference_kept_after_put():
    pool = checked(FreeListPool(list), quarantine=2)
    kept = None
    for _ in range(10):
        obj = pool.get()
        if kept is not None:
            kept.append("stale")  # the previous request's list, already put back
        obj.append("mine")
        kept = obj
        obj.clear()
        pool.put(obj)
    findings = {f.kind: f for f in pool.checker.finish()}
    assert "use-after-put" in findings  # (and the stale data is then reused dirty: no reset here)
    assert "while in quarantine" in findings["use-after-put"].detail


def test_the_quarantine_never_makes_a_bounded_pool_wait_for_itself():
    from poolbench.pools import BoundedPool

    pool = checked(BoundedPool(list, max_size=2, timeout=1.0))
    for _ in range(20):  # would raise PoolTimeout if both objects sat in quarantine
        pool.put(pool.get())
    assert pool.checker.finish() == []
