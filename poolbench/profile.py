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
look like a perfect candidate. The child counts those calls (a trace hook, by calling line and
frame size) and they are taken off their lines here.
"""

from __future__ import annotations

import json
import linecache
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ProfileFailed, UsageError

SHORT = 16
"""An allocation freed before its site made this many more is short-lived (``--short``)."""
MIN_COUNT = 100
"""A site with fewer allocations of its typical size is not frequent enough to pool (``--min-count``)."""
SHORT_SHARE = 0.5
UNIFORM_SHARE = 0.8
ALIVE_SHARE = 0.1
MIN_SIZE = 256
"""Smaller objects come from pymalloc's free lists, and many are the interpreter's own
temporaries (bound methods, slices, ints) that no pool can hold: listed, not candidates."""

NO_SITE = "(no frame of your code)"
_TRACER = "_count_call"


@dataclass(frozen=True)
class Target:
    """What to run: a script, a module (``-m``) or a scenario, with its arguments."""

    kind: str  # "script" | "module" | "scenario"
    name: str
    args: tuple[str, ...] = ()
    scenario: dict[str, Any] | None = None  # ScenarioRef.to_json()
    params: dict[str, Any] = field(default_factory=dict)
    pool: str = "none"
    ops: int = 5000

    def describe(self) -> str:
        if self.kind == "module":
            return " ".join(["-m", self.name, *self.args])
        if self.kind == "scenario":
            extra = "".join(f" -p {k}={v}" for k, v in self.params.items())
            return f"scenario {self.name}{extra} --pool {self.pool} ({self.ops:,} ops)"
        return " ".join([self.name, *self.args])


@dataclass
class Site:
    site: str
    function: str
    allocations: int = 0
    bytes: int = 0
    short_lived: int = 0
    short_lived_bytes: int = 0
    alive_at_end: int = 0
    visits: int = 0
    """Passes of the program through the line that allocated (consecutive allocations of one
    line are one visit: ``bytearray(n)`` makes two, a database connection dozens)."""
    typical_size: int = 0
    """Bytes one visit allocates, the value that carries most of the site's bytes."""
    typical_count: int = 0
    uniformity: float = 0.0
    candidate: bool = False
    why: str = ""
    sizes: Counter[int] = field(default_factory=Counter, repr=False)  # bytes per visit -> visits

    @property
    def short_lived_share(self) -> float:
        """Of the site's bytes, the share freed soon. Bytes, not allocations: the structs of
        dicts, lists and floats go back to CPython's free lists, not to the allocator, so they
        never show as freed; their contents (a dict's keys, a list's items) do."""
        return self.short_lived_bytes / self.bytes if self.bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["sizes"]
        data["short_lived_share"] = round(self.short_lived_share, 4)
        data["uniformity"] = round(self.uniformity, 4)
        return data


@dataclass
class Estimate:
    """What pooling the candidates shown would save per run: an estimate, not a measurement."""

    sites: int
    allocations: int
    bytes: int
    collections: int
    """Gen-0 collections avoided, at most: the run's gen-0 collections times the candidates'
    share of pymalloc's allocations (collections are driven by container objects only)."""


@dataclass
class Profile:
    target: str
    ended: str
    ok: bool
    seconds: float
    allocations: int
    bytes: int
    gc_collections: list[int]
    short: int
    sites: list[Site]
    estimate: Estimate

    def to_json(self, top: int | None = None) -> dict[str, Any]:
        shown = self.sites if top is None else self.sites[:top]
        return {
            "target": self.target,
            "ended": self.ended,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "allocations": self.allocations,
            "bytes": self.bytes,
            "gc_collections": self.gc_collections,
            "short_lived_within": self.short,
            "estimate": asdict(self.estimate),
            "sites": [s.to_json() for s in shown],
        }


# ---------------------------------------------------------------------------------------------
# Running the program under memray (child process)


def memray_missing() -> str | None:
    """Why memray cannot be used in this Python, or None."""
    try:
        import memray  # noqa: F401
    except ImportError:
        if not getattr(sys, "_is_gil_enabled", lambda: True)():
            return "memray has no free-threaded build: profile needs a Python with the GIL"
        return "memray is not installed (pip install memray)"
    return None


def run_target(
    target: Target,
    *,
    timeout: float,
    short: int = SHORT,
    min_count: int = MIN_COUNT,
    python: str | None = None,
) -> Profile:
    """Run ``target`` under memray in a child process and rank its allocation sites.

    A program that raises, exits non-zero or outlives ``timeout`` is still profiled for what it
    ran; :attr:`Profile.ended` says how it ended and :attr:`Profile.ok` is False.
    """
    missing = memray_missing()
    if missing:
        raise UsageError(f"cannot profile: {missing}")
    with tempfile.TemporaryDirectory(prefix="poolbench-profile-") as folder:
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
        proc = subprocess.Popen(
            [python or sys.executable, "-m", "poolbench.profile", str(spec_path)],
            stdout=program_output,
            start_new_session=True,
        )
        stopped = None
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stopped = f"stopped after the --timeout of {timeout:g} s"
            _interrupt(proc)
        except KeyboardInterrupt:
            stopped = "interrupted (Ctrl-C)"
            _interrupt(proc)
        seconds = time.perf_counter() - started
        ended, ok = _ending(proc.returncode, info, stopped)
        if not capture.exists() or capture.stat().st_size == 0:
            raise ProfileFailed(f"nothing was recorded: the program {ended}")
        gc_collections, frames = [0, 0, 0], []
        if info.exists():
            written = json.loads(info.read_text())
            gc_collections, frames = written.get("gc", gc_collections), written.get("frames", [])
        user_files = _user_files(target)
        try:
            return analyze(
                capture, target.describe(), ended, ok, seconds, gc_collections, short, user_files,
                frames=frames, min_count=min_count,
            )  # fmt: skip
        except OSError as exc:
            raise ProfileFailed(f"the recording could not be read ({exc}): the program {ended}") from None


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C the program (its ``finally`` blocks and memray's tracker close the recording), then
    kill it if it does not stop."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _ending(code: int, info: Path, stopped: str | None) -> tuple[str, bool]:
    if stopped:
        return stopped, False
    if info.exists():
        ended: str = json.loads(info.read_text())["ended"]
        return ended, ended == "finished"
    if code < 0:
        return f"was killed by signal {-code}", False
    return f"ended with exit status {code} before anything was recorded", False


def _user_files(target: Target) -> frozenset[str]:
    """Files that count as the user's code even when installed (a scenario's own file)."""
    if target.kind != "scenario" or not target.scenario:
        return frozenset()
    from .discovery import ScenarioRef, load_ref

    cls = load_ref(ScenarioRef.from_json(target.scenario))
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    return frozenset([os.path.realpath(path)]) if path else frozenset()


def _child(spec_path: str) -> int:
    """The child: run the target inside memray's tracker; write how it ended and the GC counts."""
    import gc
    import runpy
    import threading

    import memray

    spec = json.loads(Path(spec_path).read_text())
    target = Target(**{**spec["target"], "args": tuple(spec["target"]["args"])})
    collections = [0, 0, 0]
    calls: dict[tuple[str, int, int], int] = {}

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    def _count_call(frame: Any, event: str, arg: Any) -> None:
        # The frame memray's hook made for this call, by the line that called and its size.
        if event == "call":
            back = frame.f_back
            if back is not None:
                key = (back.f_code.co_filename, back.f_lineno, sys.getsizeof(frame))
                calls[key] = calls.get(key, 0) + 1

    work = _scenario_work(target) if target.kind == "scenario" else None
    ended = "finished"
    gc.callbacks.append(count)
    try:
        with memray.Tracker(
            spec["capture"], native_traces=False, trace_python_allocators=True, follow_fork=False
        ):
            sys.settrace(_count_call)
            threading.settrace(_count_call)
            try:
                if work is not None:
                    work()
                elif target.kind == "module":
                    sys.argv = [target.name, *target.args]
                    runpy.run_module(target.name, run_name="__main__", alter_sys=True)
                else:
                    sys.argv = [target.name, *target.args]
                    sys.path.insert(0, os.path.dirname(os.path.abspath(target.name)))
                    runpy.run_path(target.name, run_name="__main__")
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    ended = f"exited with status {exc.code}"
            except KeyboardInterrupt:
                ended = "was interrupted"
            except BaseException as exc:  # noqa: BLE001 - how the program ended is reported
                ended = f"raised {type(exc).__name__}: {exc}"
            finally:
                sys.settrace(None)
                threading.settrace(None)
    finally:
        gc.callbacks.remove(count)
        frames = [[*key, n] for key, n in calls.items()]
        Path(spec["info"]).write_text(json.dumps({"ended": ended, "gc": collections, "frames": frames}))
    return 0


def _scenario_work(target: Target) -> Any:
    """``ops`` operations of a scenario under ``pool``, set up before tracing starts."""
    from .discovery import ScenarioRef, load_ref
    from .strategies import build_strategies
    from .timing import round_up

    assert target.scenario is not None
    cls = load_ref(ScenarioRef.from_json(target.scenario))
    scenario = cls(dict(target.params))
    scenario.setup()
    [strategy] = build_strategies(scenario, [target.pool], 1)
    ops = round_up(target.ops, scenario.params["batch"])

    def work() -> None:
        try:
            scenario.run(ops, strategy.get, strategy.put)
        finally:
            scenario.teardown()

    return work


# ---------------------------------------------------------------------------------------------
# Reading the recording (this process)


def _skipped_folders() -> tuple[str, ...]:
    from .pools._checked import _not_user_code

    return _not_user_code()


def analyze(
    capture: Path,
    target: str,
    ended: str,
    ok: bool,
    seconds: float,
    gc_collections: Sequence[int],
    short: int = SHORT,
    user_files: frozenset[str] = frozenset(),
    *,
    frames: Sequence[Sequence[Any]] = (),
    min_count: int = MIN_COUNT,
) -> Profile:
    """Charge every allocation of ``capture`` to its site and rank the sites."""
    import memray

    kinds = memray.AllocatorType
    frees = {kinds.FREE, kinds.PYMALLOC_FREE}
    allocs = {
        kinds.MALLOC, kinds.CALLOC, kinds.REALLOC, kinds.POSIX_MEMALIGN, kinds.ALIGNED_ALLOC,
        kinds.MEMALIGN, kinds.VALLOC, kinds.PVALLOC, kinds.PYMALLOC_MALLOC, kinds.PYMALLOC_CALLOC,
        kinds.PYMALLOC_REALLOC,
    }  # fmt: skip
    pymalloc = {kinds.PYMALLOC_MALLOC, kinds.PYMALLOC_CALLOC, kinds.PYMALLOC_REALLOC}
    skipped = _skipped_folders()
    site_of_stack: dict[int, Site] = {}
    sites: dict[str, Site] = {}
    real: dict[str, str] = {}

    def user(filename: str) -> bool:
        path = real.get(filename)
        if path is None:
            path = real[filename] = os.path.realpath(filename)
        if path in user_files:
            return True
        return not (filename.startswith(skipped) or path.startswith(skipped) or filename.startswith("<"))

    ignored = Site("(poolbench's call counting)", "")

    def site_for(record: Any) -> Site:
        key = record.stack_id
        found = site_of_stack.get(key)
        if found is None:
            where, function = NO_SITE, ""
            stack = record.stack_trace()
            if (
                stack
                and stack[0][0] == _TRACER
                and os.path.realpath(stack[0][1]) == os.path.realpath(__file__)
            ):
                site_of_stack[key] = ignored
                return ignored
            for function_name, filename, line in stack:
                if user(filename):
                    where, function = f"{filename}:{line}", function_name
                    break
            found = sites.get(where)
            if found is None:
                found = sites[where] = Site(where, function)
            site_of_stack[key] = found
        return found

    # Frame objects memray's hook made, by calling line and size: skipped as they come.
    frame_budget: Counter[tuple[str, int]] = Counter()
    for filename, line, size, calls in frames:
        frame_budget[(f"{filename}:{line}", int(size))] += int(calls)
    reader = memray.FileReader(str(capture))
    live: dict[int, tuple[Site, int, int]] = {}
    seq = total_bytes = pymalloc_allocations = 0
    pymalloc_by_site: Counter[str] = Counter()
    visiting: Site | None = None  # the site of the last allocation, and what its visit made
    visit_bytes = 0
    for record in reader.get_allocation_records():
        kind = record.allocator
        if kind in frees:
            entry = live.pop(record.address, None)
            if entry is not None and entry[0].visits - entry[1] <= short:
                entry[0].short_lived += 1
                entry[0].short_lived_bytes += entry[2]
            continue
        if kind not in allocs:
            continue  # mmap/munmap: arenas that pymalloc's own records already cover
        site = site_for(record)
        if site is ignored:
            continue
        size = record.size
        if frame_budget and frame_budget[(site.site, size)] > 0:
            frame_budget[(site.site, size)] -= 1
            continue
        if site is not visiting:
            # A visit: one pass of the program through the line, every allocation it made.
            if visiting is not None:
                visiting.sizes[visit_bytes] += 1
            visiting, visit_bytes = site, 0
            site.visits += 1
        visit_bytes += size
        seq += 1
        site.allocations += 1
        site.bytes += size
        total_bytes += size
        if kind in pymalloc:
            pymalloc_allocations += 1
            pymalloc_by_site[site.site] += 1
        previous = live.get(record.address)
        if previous is not None and previous[0].visits - previous[1] <= short:
            previous[0].short_lived += 1  # grown in place: the old block's life ended here
            previous[0].short_lived_bytes += previous[2]
        live[record.address] = (site, site.visits, size)
    if visiting is not None:
        visiting.sizes[visit_bytes] += 1
    for record in reader.get_leaked_allocation_records(merge_threads=True):
        if record.allocator in allocs:
            site_for(record).alive_at_end += record.n_allocations
    reader.close()
    for key in [k for k, site in sites.items() if site.allocations == 0]:
        del sites[key]

    for site in sites.values():
        _judge(site, short, min_count)
    ranked = sorted(sites.values(), key=lambda s: (not s.candidate, -s.bytes, s.site))
    return Profile(
        target=target,
        ended=ended,
        ok=ok,
        seconds=seconds,
        allocations=seq,
        bytes=total_bytes,
        gc_collections=list(gc_collections),
        short=short,
        sites=ranked,
        estimate=_estimate(ranked, gc_collections, pymalloc_by_site, pymalloc_allocations),
    )


def _judge(site: Site, short: int, min_count: int) -> None:
    if site.sizes:
        typical, _ = max(site.sizes.items(), key=lambda kv: (kv[0] * kv[1], kv[0]))
        site.typical_size = typical
        site.typical_count = site.sizes[typical]
        near = sum(s * n for s, n in site.sizes.items() if typical / 2 <= s <= typical * 2)
        site.uniformity = near / site.bytes if site.bytes else 1.0
    alive = site.alive_at_end / site.allocations if site.allocations else 0.0
    if site.site == NO_SITE:
        site.why = "allocated by the interpreter or libraries with no frame of your code on the stack"
    elif alive > ALIVE_SHARE:
        site.why = (
            f"objects live on: {site.alive_at_end:,} of {site.allocations:,} still alive at exit "
            "(a cache or a long-lived structure)"
        )
    elif site.typical_count < min_count:
        site.why = (
            f"rare: {site.typical_count:,} visits made {site.typical_size:,} B (fewer than {min_count:,})"
        )
    elif site.typical_size < MIN_SIZE:
        site.why = (
            f"small: {site.typical_size:,} B objects come from pymalloc's free lists, and many are "
            "the interpreter's own temporaries, which no pool can hold"
        )
    elif site.short_lived_share < SHORT_SHARE:
        site.why = (
            f"held long: {site.short_lived_share:.0%} of its bytes freed within {short} visits of the line "
            "(pooling pays for objects that come back soon)"
        )
    elif site.uniformity < UNIFORM_SHARE:
        site.why = (
            f"sizes vary: {site.uniformity:.0%} of its bytes within 2x of {site.typical_size:,} B "
            "(one pool would hold objects of very different sizes)"
        )
    else:
        site.candidate = True
        site.why = (
            f"{site.typical_count:,} visits made {site.typical_size:,} B, "
            f"{site.short_lived_share:.0%} of the bytes freed within {short} visits: pool them"
        )


def _estimate(
    ranked: Sequence[Site], gc_collections: Sequence[int], pymalloc_by_site: Counter[str], pymalloc: int
) -> Estimate:
    chosen = [s for s in ranked if s.candidate]
    share = sum(pymalloc_by_site[s.site] for s in chosen) / pymalloc if pymalloc else 0.0
    return Estimate(
        sites=len(chosen),
        allocations=sum(s.short_lived for s in chosen),
        bytes=sum(s.short_lived_bytes for s in chosen),
        collections=math.floor(gc_collections[0] * share) if gc_collections else 0,
    )


# ---------------------------------------------------------------------------------------------
# --scaffold


def _kind_of(site: Site) -> str:
    filename, _, line = site.site.rpartition(":")
    text = linecache.getline(filename, int(line)) if line.isdigit() else ""
    for kind in ("bytearray", "bytes", "list", "dict"):
        if f"{kind}(" in text:
            return kind
    if "[" in text and "]" in text and "=" in text:
        return "list"
    if "{" in text and "}" in text:
        return "dict"
    return "bytearray"


def _buffer_size(size: int) -> int:
    """The size a buffer was asked for: one visit of ``bytearray(n)`` allocates the object (56 B)
    and ``n + 1`` bytes; a power of two a little below is what was meant."""
    if size > 64:
        power = 1 << (size.bit_length() - 1)
        if 0 <= size - power <= max(64, power // 16):
            return power
    return size


def scaffold(site: Site, name: str) -> str:
    """The source of a scenario whose ``new()`` makes an object like ``site``'s."""
    if not name.replace("-", "_").isidentifier() or name.startswith("-"):
        raise UsageError(f"--scaffold takes a name like my-buffer, not {name!r}")
    class_name = "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)
    kind = _kind_of(site)
    size = _buffer_size(site.typical_size)
    if kind in ("bytearray", "bytes"):
        new = 'return bytearray(self.params["size"])'
        use = (
            "# The work your code does with the object. Here: fill it, as a read would.\n"
            "        with memoryview(buf) as view:\n"
            "            view[: len(self.payload)] = self.payload"
        )
        setup = '        self.payload = bytes(range(256)) * (self.params["size"] // 256)\n'
        params, arg, annotation = f'{{"size": {size}}}', "buf", "bytearray"
    else:
        new = f"return {kind}()"
        fill = "buf.extend(range(16))" if kind == "list" else "buf.update(zip(range(16), range(16)))"
        use = f"# The work your code does with the object. Here: fill it.\n        {fill}"
        setup = ""
        params, arg, annotation = "{}", "buf", kind
    setup_method = f"    def setup(self) -> None:\n{setup}\n" if setup else ""
    reset = (
        "buf.clear()" if kind in ("list", "dict") else "pass  # a buffer the next read overwrites needs none"
    )
    return f'''"""A pooling candidate found by `poolbench profile`.

Site: {site.site} in {site.function}
{site.allocations:,} allocations, {site.bytes:,} B, {site.short_lived_share:.0%} short-lived; typical size {site.typical_size:,} B.

Measure it:  poolbench run {name} --scenarios-dir scenarios --pool none,sync,freelist
"""

from __future__ import annotations

from poolbench import Scenario


class {class_name}(Scenario):
    """Objects like the ones made at {os.path.basename(site.site)} ({site.function})."""

    name = "{name}"
    description = "objects like those made at {os.path.basename(site.site)}"
    params = {params}

{setup_method}    def new(self) -> {annotation}:
        # Make the object as {site.function}() does at {site.site}.
        {new}

    def use(self, {arg}: {annotation}) -> None:
        {use}

    # Define reset() if use() leaves state the next user must not see; the pools call it once
    # per reuse, and `poolbench doctor {name}` reports dirty reuse when it is missing.
    # def reset(self, {arg}: {annotation}) -> None:
    #     {reset}
'''


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
