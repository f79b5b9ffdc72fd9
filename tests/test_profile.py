"""``poolbench profile``: real programs under memray, in child processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("memray")

SERVICE = (Path(__file__).parent / "data" / "service_loop.py").read_text()


def poolbench(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "poolbench", *args], capture_output=True, text=True, timeout=timeout
    )


def line_of(source, marker):
    return next(i for i, text in enumerate(source.splitlines(), 1) if marker in text)


@pytest.fixture
def service(tmp_path):
    path = tmp_path / "service.py"
    path.write_text(SERVICE)
    return path


def test_the_request_buffer_is_the_top_candidate_and_the_cache_is_not_one(service):
    done = poolbench("profile", str(service), "--format", "json", "--top", "50")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    sites = {s["site"]: s for s in found["sites"]}
    buffer = sites[f"{service}:{line_of(SERVICE, '# BUFFER')}"]
    cache = sites[f"{service}:{line_of(SERVICE, '# CACHE')}"]
    assert found["sites"][0] is not None and found["sites"][0]["site"] == buffer["site"]
    assert buffer["candidate"] and buffer["short_lived_share"] > 0.99 and buffer["function"] == "handle"
    candidates = [s for s in found["sites"] if s["candidate"]]
    assert max(candidates, key=lambda s: s["bytes"]) == buffer
    assert 64 * 1024 < buffer["typical_size"] < 65 * 1024
    assert not cache["candidate"] and "alive at exit" in cache["why"]
    assert cache["alive_at_end"] >= 1500
    assert found["estimate"]["bytes"] >= 1500 * 64 * 1024


def test_frames_of_calls_are_not_charged_to_the_calling_line(service):
    found = json.loads(poolbench("profile", str(service), "--format", "json", "--top", "50").stdout)
    call_line = f"{service}:{line_of(SERVICE, 'handle(i)')}"
    # The profile charged the service's own lines (the buffer inside handle): a missing call line
    # below is the frames taken off it, not a profile that charged nothing to this file.
    assert any(s["function"] == "handle" and s["candidate"] for s in found["sites"])
    call = next((s for s in found["sites"] if s["site"] == call_line), None)
    # memray's hook makes a frame for each of the 1,500 calls: none may stay on the calling line.
    assert call is None or (not call["candidate"] and call["allocations"] < 15)


def test_the_scaffold_runs_with_poolbench_run_unchanged(service, tmp_path):
    done = poolbench("profile", str(service), "--scaffold", "request-buffer")
    assert done.returncode == 0, done.stderr
    written = tmp_path / "scenarios" / "request_buffer.py"
    assert f"service.py:{line_of(SERVICE, '# BUFFER')}" in written.read_text()
    assert 'params = {"size": 65536}' in written.read_text()
    run = poolbench("run", "request-buffer", "--scenarios-dir", "scenarios", "--quick", "-t", "1",
                    "--pool", "sync", "-o", "rb.json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "rb.json").exists()
    again = poolbench("profile", str(service), "--scaffold", "request-buffer")
    assert again.returncode == 2 and "exists" in again.stderr


@pytest.mark.parametrize(
    "scenario, file, marker, offset",
    [
        ("bytes-buffer", "bytes_buffer.py", "def new", 1),  # the body of new()
        ("json-struct", "json_struct.py", "def new", 1),
        ("worker-tasks", "worker_tasks.py", "def new", 1),
        ("db-connections", "db_connections.py", "self.connect: Callable", 0),
    ],
)
def test_each_builtin_under_no_pool_ranks_the_object_it_pools_first(scenario, file, marker, offset):
    """The line that makes the pooled object (for db-connections the connect call its new()
    makes) is the top candidate; the library's own allocations are folded into it or set aside."""
    found = json.loads(poolbench("profile", scenario, "--pool", "none", "--format", "json").stdout)
    top = found["sites"][0]
    source = (Path(__file__).parent.parent / "scenarios" / file).read_text()
    expected = line_of(source, marker) + offset
    assert top["candidate"], top
    assert top["site"].endswith(f"{file}:{expected}"), (top, expected)


def test_what_a_connection_owns_is_counted_with_it_and_a_libraries_temporaries_are_not_candidates():
    db = json.loads(poolbench("profile", "db-connections", "--pool", "none", "--format", "json").stdout)
    owner = db["sites"][0]
    owned = [s for s in db["sites"] if s["owner"] == owner["site"]]
    assert owned and owner["owned_bytes"] == sum(s["bytes"] for s in owned)
    assert all(not s["candidate"] and "freed with the objects made at" in s["why"] for s in owned)
    js = json.loads(poolbench("profile", "json-struct", "--pool", "none", "--format", "json").stdout)
    dumps = next(s for s in js["sites"] if s["function"] == "use" and s["bytes"] > 1_000_000)
    assert not dumps["candidate"] and dumps["why"].startswith("temporaries of the line")


def test_under_a_pool_the_buffer_is_no_longer_allocated_per_op():
    found = json.loads(
        poolbench("profile", "bytes-buffer", "--pool", "sync", "--format", "json", "--top", "50").stdout
    )
    new = [s for s in found["sites"] if s["function"] == "new"]
    assert new, "the pool's misses still call new: its site must be there"
    assert all(s["allocations"] <= 4 for s in new)
    unpooled = json.loads(poolbench("profile", "bytes-buffer", "--format", "json", "--top", "50").stdout)
    assert sum(s["allocations"] for s in unpooled["sites"] if s["function"] == "new") >= 5000


def test_a_program_that_raises_is_profiled_up_to_there_and_exits_1(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("bufs = [bytearray(4096) for _ in range(100)]\nraise ValueError('boom')\n")
    done = poolbench("profile", str(script), "--format", "json")
    assert done.returncode == 1
    assert "raised ValueError: boom" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["ended"] == "raised ValueError: boom"


def test_a_program_that_exits_non_zero_says_so(tmp_path):
    script = tmp_path / "exit3.py"
    script.write_text("import sys\nx = [bytearray(100) for _ in range(10)]\nsys.exit(3)\n")
    done = poolbench("profile", str(script))
    assert done.returncode == 1 and "exited with status 3" in done.stderr


def test_a_program_that_runs_too_long_is_stopped_at_the_timeout(tmp_path):
    script = tmp_path / "forever.py"
    script.write_text("while True:\n    b = bytearray(1024)\n")
    done = poolbench("profile", str(script), "--timeout", "2", "--format", "json")
    assert done.returncode == 1 and "--timeout of 2 s" in done.stderr
    assert json.loads(done.stdout)["sites"]


def test_script_arguments_reach_the_script(tmp_path):
    script = tmp_path / "args.py"
    script.write_text("import sys\nassert sys.argv[1:] == ['--n', '3'], sys.argv\n")
    assert poolbench("profile", str(script), "--", "--n", "3").returncode == 0


def test_a_module_runs_with_dash_m(tmp_path):
    (tmp_path / "svc_mod.py").write_text(textwrap.dedent(SERVICE))
    done = subprocess.run(
        [sys.executable, "-m", "poolbench", "profile", "-m", "svc_mod", "--format", "json"],
        capture_output=True, text=True, cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sites"][0]["function"] == "handle"


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.py"], "no such script"),
        (["no-such-scenario"], "unknown scenario"),
        (["bytes-buffer", "-p", "nope=1"], "has a parameter 'nope'"),
        (["bytes-buffer", "--top", "0"], "--top"),
        (["x.py", "--plot", "out.txt"], "no such script"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(args, message):
    done = poolbench("profile", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_plot_draws_the_top_sites(service, tmp_path):
    done = poolbench("profile", str(service), "--plot", "sites.png", "--top", "5")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sites.png").stat().st_size > 1000


def test_a_plot_that_cannot_be_written_is_one_line_and_exit_2(service, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    done = poolbench("profile", str(service), "--plot", str(tmp_path / "taken" / "sites.png"), "--top", "2")
    assert done.returncode == 2, done.stderr
    assert "taken is a file, not a folder" in done.stderr and "Traceback" not in done.stderr


def test_without_memray_profile_says_so(monkeypatch):
    from poolbench import profile
    from poolbench.errors import UsageError

    monkeypatch.setitem(sys.modules, "memray", None)
    with pytest.raises(UsageError, match="memray"):
        profile.run_target(profile.Target("script", "x.py"), timeout=5)


def test_an_installed_scenario_file_still_counts_as_the_users_code(monkeypatch):
    # As if the built-in scenarios were installed in site-packages (a non-editable install):
    # their folder is then skipped like any installed package, except the profiled scenario's file.
    from poolbench import callsites, profile
    from poolbench.profile import ProfileRequest
    from poolbench.profile._session import target_of

    target = target_of(ProfileRequest("bytes-buffer", ops=500))
    installed = str(Path(target.source).parent) + "/"
    monkeypatch.setattr(callsites, "_SKIPPED", (*callsites._SKIPPED, installed))
    callsites.user_code.cache_clear()
    try:
        found = profile.run_target(target, timeout=120)
    finally:
        callsites.user_code.cache_clear()
    assert found.sites[0].function == "new" and found.sites[0].site.startswith(target.source)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-m", "surely_missing.module"], "no module named 'surely_missing'"),
        (["TMP"], "is a folder, not a script"),
        (["bytes-buffer", "--scaffold", "9bad"], "--scaffold takes a name"),
        (["bytes-buffer", "--ops", "99999999999999"], "--ops 1 to"),
    ],
)
def test_bad_profile_input_is_exit_2_before_anything_runs(tmp_path, args, said):
    started = time.monotonic()
    done = poolbench("profile", *(str(tmp_path) if a == "TMP" else a for a in args))
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 30  # refused up front, not after a profile


def test_doctor_ops_beyond_any_run_is_bad_input():
    done = poolbench("doctor", "--ops", "99999999999999999999")
    assert done.returncode == 2 and "--ops takes 1 to" in done.stderr


def _running(pids):
    import psutil

    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


FORKER = """
import os, subprocess, sys, time
pids = open(sys.argv[1], "w")
# one child in the program's process group, one that leaves it, and a daemon (double fork + setsid)
for code in ["import time; time.sleep(300)", "import os, time; os.setsid(); time.sleep(300)"]:
    print(subprocess.Popen([sys.executable, "-c", code]).pid, file=pids, flush=True)
if os.fork() == 0:
    os.setsid()
    grandchild = os.fork()
    if grandchild == 0:
        time.sleep(300)
    else:
        print(grandchild, file=pids, flush=True)
    os._exit(0)
time.sleep(0.5)
x = [bytearray(100) for _ in range(10)]
"""


def test_every_process_a_profiled_program_leaves_running_is_ended(tmp_path):
    script, pids = tmp_path / "forker.py", tmp_path / "pids"
    script.write_text(FORKER)
    done = poolbench("profile", str(script), "--format", "json", "--", str(pids))
    assert done.returncode == 0, done.stderr
    started = [int(line) for line in pids.read_text().split()]
    assert len(started) == 3
    time.sleep(0.2)
    assert _running(started) == []
    assert json.loads(done.stdout)["left_running"] == 3
    assert "left 3 process(es) running" in done.stderr


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_during_profile_ends_the_program_and_its_folder(tmp_path, sig):
    import os
    import signal

    script, pids = tmp_path / "slow.py", tmp_path / "pids"
    script.write_text(
        "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "while True:\n    b = bytearray(1024)\n    time.sleep(0.001)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolbench", "profile", str(script), "--", str(pids)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not pids.exists() or not pids.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert _running([int(pids.read_text())]) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("poolbench-")] == []


def test_a_script_that_does_not_compile_is_bad_input_named_by_its_line(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("x = 1\n\ndef f(:\n    pass\n")
    done = poolbench("profile", str(script))
    assert done.returncode == 2 and f"{script}: invalid syntax (line 3)" in done.stderr
    assert "importlib" not in done.stderr and "allocations" not in done.stdout


def test_an_asyncio_program_is_profiled_at_its_own_lines_not_asyncios(tmp_path):
    source = (Path(__file__).parent / "data" / "async_service.py").read_text()
    path = tmp_path / "async_service.py"
    path.write_text(source)
    done = poolbench("profile", str(path), "--format", "json", "--top", "50")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    top = found["sites"][0]
    assert top["site"] == f"{path}:{line_of(source, '# BUFFER')}" and top["candidate"], found["sites"][:3]
    assert top["function"] == "handle" and 64 * 1024 < top["typical_size"] < 65 * 1024
    cache = next(s for s in found["sites"] if s["site"] == f"{path}:{line_of(source, '# CACHE')}")
    assert not cache["candidate"]
    assert all(s["site"].startswith(str(path)) for s in found["sites"] if s["candidate"]), found["sites"]
