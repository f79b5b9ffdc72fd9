"""``poolbench profile``: which allocations of a program are worth pooling.

The program runs once under memray in a child process (nothing is timed while tracing), with
``trace_python_allocators=True`` so every object pymalloc hands out is a record. Then, in this
process, every allocation is charged to its **site**: the first frame of the stack that is the
user's code (not the standard library, not an installed package, not poolbench), so what ``json``
or ``bytes`` allocate on behalf of a line counts for that line.

Per site: allocations, bytes and **visits** (passes of the program through the line: consecutive
allocations charged to one line are one visit, so ``bytearray(n)`` is one visit of two allocations
and a database connection one of dozens); the share of allocations that was **short-lived** (freed
before the line was visited ``short`` more times: a pool of that many objects would have served
it); the typical size (the bytes one visit allocates, the value that carries most of the site's
bytes) and how uniform it is (the share of bytes from visits within a factor of 2 of the typical
size: one pool of objects that size would serve them); and how many allocations were still alive
when the program ended (memray's leaked records). A **candidate** is visited often, short-lived,
uniform in size, not kept alive and not tiny; every other site says why it is not one.

Lifetimes are counted here from the raw record stream rather than with
``FileReader.get_temporary_allocation_records``: that one counts a buffer grown by ``realloc``
once per call and misses pymalloc objects whose address is reused at once (measured on memray
1.20: 391 "temporary" records for 200 ``bytearray(65536)`` and none for their 200 objects), and
it counts lifetimes in the whole program's allocations, so a per-request buffer in a handler that
allocates 20 other objects never looks temporary.

memray follows the stack with a profile hook, which makes CPython create a frame object for
every call of a Python function, charged to the calling line: a handler called in a loop would
look like a perfect candidate. Those frames are recognised in the record stream: the allocation
made just before the stack grows by a call from the very same line is the callee's frame, when
it has the size most of that callee's calls had (a resumed generator makes no frame, and
whatever came before it must not be taken for one). No hook of our own: a trace
hook to count calls would itself allocate on every call (the callee's locals dict), measured
here as 1,244 more allocations than the 1,500 frames it let us remove.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from .. import processes
from ..errors import ProfileFailed, Stopped, UsageError
from ._analysis import analyze
from ._model import FINISHED, MAX_OPS, MIN_COUNT, SHORT, Estimate, Profile, Site, Target
from ._scaffold import check_scaffold_name, scaffold
from ._session import ProfileOutcome, ProfileRequest, profile_session

__all__ = [
    "FINISHED", "MAX_OPS", "MIN_COUNT", "SHORT", "Estimate", "Profile", "ProfileOutcome", "ProfileRequest",
    "Site", "Target", "analyze", "check_scaffold_name", "profile_session", "run_target", "scaffold",
]  # fmt: skip


INTERRUPT_GRACE = 15.0
"""Seconds a program stopped at ``--timeout`` or by Ctrl-C has to end (its ``finally`` blocks,
memray closing the recording) before it is killed."""


def run_target(target: Target, *, timeout: float, short: int = SHORT, min_count: int = MIN_COUNT) -> Profile:
    """Run ``target`` under memray in a child process and rank its allocation sites.

    A program that raises, exits non-zero or outlives ``timeout`` is still profiled for what it
    ran; :attr:`Profile.ended` says how it ended and :attr:`Profile.ok` is False.
    """
    from ..counting import memray_available
    from ..env import gil_enabled

    if not memray_available():
        if not gil_enabled():
            raise UsageError(
                "cannot profile: memray has no free-threaded build", hint="use a Python with the GIL"
            )
        raise UsageError("cannot profile: memray is not installed", hint="pip install memray")
    from ..spawn import folder_prefix, remove_stale_folders

    remove_stale_folders()
    with tempfile.TemporaryDirectory(prefix=folder_prefix("profile")) as folder:
        capture, info = Path(folder, "capture.bin"), Path(folder, "info.json")
        spec = {"target": asdict(target), "capture": str(capture), "info": str(info)}
        spec_path = Path(folder, "spec.json")
        spec_path.write_text(json.dumps(spec))
        started = time.perf_counter()
        # The program's own output goes to stderr: stdout stays poolbench's (JSON, Markdown).
        try:
            program_output: int | None = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            program_output = None  # stderr is not a file (a test runner's capture)
        with processes.Descendants() as descendants:
            # The program may read stdin (inherited); a session of its own, as every child has.
            proc = processes.start([sys.executable, "-m", "poolbench.profile", str(spec_path)],
                                   stdin=None, stdout=program_output)  # fmt: skip
            stopped = None
            try:
                if processes.wait(proc, timeout) is None:
                    stopped = f"stopped after the --timeout of {timeout:g} s"
                    processes.interrupt(proc, grace=INTERRUPT_GRACE)
            except Stopped:
                processes.interrupt(proc, grace=2.0)
                raise  # a stop signal: nothing is read, the folder goes with the with-block
            except KeyboardInterrupt:
                stopped = "interrupted (Ctrl-C)"
                processes.interrupt(proc, grace=INTERRUPT_GRACE)
            finally:
                left = descendants.end(proc.pid)
        seconds = time.perf_counter() - started
        # What the child wrote when the program ended: how, and the collections.
        written = json.loads(info.read_text()) if info.exists() else {}
        ended = stopped or written.get("ended") or _died(proc.returncode)
        if not capture.exists() or capture.stat().st_size == 0:
            raise ProfileFailed(f"nothing was recorded: the program {ended}")
        try:
            result = analyze(
                capture, target.describe(), ended, seconds, written.get("gc", [0, 0, 0]), short,
                frozenset([os.path.realpath(target.source)] if target.source else []), min_count=min_count,
            )  # fmt: skip
        except OSError as exc:
            raise ProfileFailed(f"the recording could not be read ({exc}): the program {ended}") from None
        result.left_running = left
        return result


def _died(code: int | None) -> str:
    """How a child that wrote nothing ended."""
    if code is None:
        return "could not be reaped after it was killed"
    if code < 0:
        return f"was killed by signal {-code}"
    return f"ended with exit status {code} before anything was recorded"
