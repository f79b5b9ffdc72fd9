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

from .errors import ProfileFailed, Stopped, UsageError

SHORT = 16
"""An allocation freed within this many visits of its line is short-lived (``--short``)."""
MIN_COUNT = 100
"""A site visited fewer times with its typical size is not frequent enough to pool (``--min-count``)."""
SHORT_SHARE = 0.5
UNIFORM_SHARE = 0.8
ALIVE_SHARE = 0.1
MIN_SIZE = 128
"""Smaller objects (with what they own) come from pymalloc's free lists, and many are the
interpreter's own temporaries (bound methods, slices, ints) that no pool can hold: listed, not
candidates."""
BATCH_REUSE = 2
"""Objects freed in batches (a request's 1,000 records, a window of tasks) are not short-lived by
the ``short`` visits rule; a site whose objects are nearly all freed, with at most one in this many
of its visits alive at once, is a candidate too: a pool that size would serve each object this
many times."""
FREED_SHARE = 0.9
TEMPORARY_SHARE = 0.8
OWNED_SHARE = 0.8

NO_SITE = "(no frame of your code)"
FINISHED = "finished"


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
    source: str | None = None
    """A scenario's own file: the user's code even when installed in site-packages."""

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
    freed_in_visit_bytes: int = 0
    """Bytes freed before the visit that made them ended: temporaries of the line itself (a
    library's scratch space, a result thrown away at once), which nothing could hold in a pool."""
    peak_alive: int = 0
    """The most of the site's visits whose objects were alive at once: a pool that size would
    serve them."""
    owner: str | None = None
    """The site whose objects own this one's: its allocations are freed with theirs (a connection's
    statement cache, a task's payload list), so pooling those objects saves these too."""
    owned_bytes: int = 0
    owned_allocations: int = 0
    """What the sites this one owns allocated (see ``owner``)."""
    sizes: Counter[int] = field(default_factory=Counter, repr=False)  # bytes per visit -> visits
    alive: Counter[int] = field(default_factory=Counter, repr=False)  # visit -> its allocations alive
    owned_by: Counter[str] = field(default_factory=Counter, repr=False)  # owner site -> bytes freed with it

    @property
    def short_lived_share(self) -> float:
        """Of the site's bytes, the share freed soon. Bytes, not allocations: the structs of
        dicts, lists and floats go back to CPython's free lists, not to the allocator, so they
        never show as freed; their contents (a dict's keys, a list's items) do."""
        return self.short_lived_bytes / self.bytes if self.bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for private in ("sizes", "alive", "owned_by"):
            del data[private]
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
    """How the program ended: "finished", "raised ValueError: ...", "stopped after the --timeout ..."."""
    seconds: float
    gc_collections: list[int]
    short: int
    sites: list[Site]
    estimate: Estimate
    left_running: int = 0
    """Processes the program started and left running when it ended (poolbench ended them)."""

    @property
    def ok(self) -> bool:
        return self.ended == FINISHED

    @property
    def allocations(self) -> int:
        return sum(s.allocations for s in self.sites)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.sites)

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
            "left_running": self.left_running,
            "short_lived_within": self.short,
            "estimate": asdict(self.estimate),
            "sites": [s.to_json() for s in shown],
        }


# ---------------------------------------------------------------------------------------------
# Running the program under memray (child process)


def run_target(target: Target, *, timeout: float, short: int = SHORT, min_count: int = MIN_COUNT) -> Profile:
    """Run ``target`` under memray in a child process and rank its allocation sites.

    A program that raises, exits non-zero or outlives ``timeout`` is still profiled for what it
    ran; :attr:`Profile.ended` says how it ended and :attr:`Profile.ok` is False.
    """
    from .counting import memray_available
    from .env import gil_enabled

    if not memray_available():
        if not gil_enabled():
            raise UsageError(
                "cannot profile: memray has no free-threaded build", hint="use a Python with the GIL"
            )
        raise UsageError("cannot profile: memray is not installed", hint="pip install memray")
    from .spawn import folder_prefix, remove_stale_folders

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
        with _Descendants() as descendants:
            proc = subprocess.Popen(
                [sys.executable, "-m", "poolbench.profile", str(spec_path)],
                stdout=program_output,
                start_new_session=True,
            )
            stopped = None
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                stopped = f"stopped after the --timeout of {timeout:g} s"
                _interrupt(proc)
            except Stopped:
                _interrupt(proc, grace=2.0)
                raise  # a stop signal: nothing is read, the folder goes with the with-block
            except KeyboardInterrupt:
                stopped = "interrupted (Ctrl-C)"
                _interrupt(proc)
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


def _interrupt(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Ctrl-C the program (its ``finally`` blocks and memray's tracker close the recording), then
    kill it if it does not stop within ``grace`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(grace)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


_PR_SET_CHILD_SUBREAPER = 36


class _Descendants:
    """Every process the profiled program starts ends with it.

    Those that stay in its process group (a plain ``fork`` or ``subprocess``) are killed with the
    group; those that left it (``setsid``, a daemon's double fork) are orphans, which Linux hands to
    this process while it is a child subreaper (``PR_SET_CHILD_SUBREAPER``) rather than to init,
    so they are found among this process's children and killed too. Elsewhere only the group is.
    """

    def __enter__(self) -> _Descendants:
        import psutil  # type: ignore[import-untyped]

        self._before = {p.pid for p in psutil.Process().children(recursive=True)}
        self._reaper = _subreaper(True)
        return self

    def end(self, group: int) -> int:
        """Kill what is left of ``group`` and every new descendant (reaping the orphans, which are
        this process's children now); how many were still running."""
        import psutil

        me = psutil.Process()
        left = {
            p.pid for p in psutil.process_iter() if p.pid != group and _pgid(p.pid) == group and _alive(p)
        }
        for _ in range(20):  # a killed process's own children are orphaned, and found, a round later
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            strays = [p for p in me.children(recursive=True) if p.pid not in self._before]
            if not strays:
                break
            for p in strays:
                if _alive(p):
                    left.add(p.pid)
                try:
                    p.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(strays, timeout=1)
        return len(left)

    def __exit__(self, *exc: object) -> None:
        if self._reaper:
            _subreaper(False)


def _subreaper(on: bool) -> bool:
    """Make this process a child subreaper (or stop); False where the platform has no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _alive(process: Any) -> bool:
    import psutil

    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _died(code: int) -> str:
    """How a child that wrote nothing ended."""
    if code < 0:
        return f"was killed by signal {-code}"
    return f"ended with exit status {code} before anything was recorded"


def _child(spec_path: str) -> int:
    """The child: run the target inside memray's tracker; write how it ended and the GC counts."""
    import gc
    import runpy
    import signal

    import memray

    # The parent stops the program at --timeout with SIGINT; a poolbench started in the background
    # of a shell inherits SIGINT ignored, and the program then ran on to the kill 15 s later,
    # its capture (179 MB of a bytearray loop) taking minutes to read.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spec = json.loads(Path(spec_path).read_text())
    target = Target(**{**spec["target"], "args": tuple(spec["target"]["args"])})
    collections = [0, 0, 0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    work = _scenario_work(target) if target.kind == "scenario" else None
    ended = FINISHED
    gc.callbacks.append(count)
    try:
        with memray.Tracker(
            spec["capture"], native_traces=False, trace_python_allocators=True, follow_fork=False
        ):
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
        gc.callbacks.remove(count)
        Path(spec["info"]).write_text(json.dumps({"ended": ended, "gc": collections}))
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


def analyze(
    capture: Path,
    target: str,
    ended: str,
    seconds: float,
    gc_collections: Sequence[int],
    short: int = SHORT,
    user_files: frozenset[str] = frozenset(),
    *,
    min_count: int = MIN_COUNT,
) -> Profile:
    """Charge every allocation of ``capture`` to its site and rank the sites."""
    import memray

    from .counting import ALLOCATING
    from .pools._checked import user_code

    kinds = memray.AllocatorType
    frees = {kinds.FREE, kinds.PYMALLOC_FREE}
    allocs = {getattr(kinds, name) for name in ALLOCATING}
    pymalloc = {kinds.PYMALLOC_MALLOC, kinds.PYMALLOC_CALLOC, kinds.PYMALLOC_REALLOC}
    stacks: dict[int, tuple[Site, tuple[Any, ...]]] = {}
    sites: dict[str, Site] = {}

    def user(filename: str) -> bool:
        return user_code(filename) or os.path.realpath(filename) in user_files

    def site_for(record: Any) -> tuple[Site, tuple[Any, ...]]:
        """The record's site, and its Python stack (innermost frame first)."""
        key = record.stack_id
        found = stacks.get(key)
        if found is None:
            stack = tuple(record.stack_trace())
            where, function = next(
                ((f"{filename}:{line}", name) for name, filename, line in stack if user(filename)),
                (NO_SITE, ""),
            )
            site = sites.get(where)
            if site is None:
                site = sites[where] = Site(where, function)
            found = stacks[key] = (site, stack)
        return found

    live: dict[int, tuple[Site, int, int, int]] = {}  # address -> its site, the visit, its size, visit serial
    pymalloc_by_site: Counter[str] = Counter()
    visiting: Site | None = None  # the site of the last allocation, and what its visit made
    visit_bytes = 0
    serial = 0  # of the visit in progress (every visit of every site)
    burst: list[tuple[Site, int]] = []  # frees since the last allocation, not yet claimed by an owner

    def close_visit() -> None:
        nonlocal visiting, serial
        if visiting is not None:
            visiting.sizes[visit_bytes] += 1
            visiting = None
            serial += 1

    def account(site: Site, size: int, address: int, kind: Any) -> None:
        nonlocal visiting, visit_bytes, serial
        burst.clear()
        if site is not visiting:
            # A visit: one pass of the program through the line, every allocation it made.
            close_visit()
            visiting, visit_bytes = site, 0
            site.visits += 1
        visit_bytes += size
        site.allocations += 1
        site.bytes += size
        if kind in pymalloc:
            pymalloc_by_site[site.site] += 1
        previous = live.get(address)
        if previous is not None:
            freed(previous)  # grown in place: the old block's life ended here
        live[address] = (site, site.visits, size, serial)
        site.alive[site.visits] += 1
        site.peak_alive = max(site.peak_alive, len(site.alive))

    def freed(entry: tuple[Site, int, int, int]) -> None:
        site, visit, size, made_in = entry
        site.alive[visit] -= 1
        if not site.alive[visit]:
            del site.alive[visit]
        if site.visits - visit <= short:
            site.short_lived += 1
            site.short_lived_bytes += size
        if made_in == serial and visiting is site:
            site.freed_in_visit_bytes += size
            return
        # Frees come in bursts as an object is torn down: its members first, the object last.
        # The first free of another site's object claims the ones before it as its own.
        for member, member_size in burst:
            if member is not site:
                member.owned_by[site.site] += member_size
        burst.clear()
        burst.append((site, size))

    # An allocation is accounted one record late: if the next one is a call made from the same
    # line, it may have been the callee's frame, which memray's own hook made (module docstring).
    frame_sizes: dict[tuple[str, str], Counter[int]] = {}  # callee (function, file) -> sizes seen
    pending: tuple[Site, int, int, Any, int, tuple[Any, ...]] | None = None
    reader = memray.FileReader(str(capture))
    for record in reader.get_allocation_records():
        kind = record.allocator
        if kind in frees:
            if pending is not None and pending[2] == record.address:
                account(*pending[:4])
                pending = None
            entry = live.pop(record.address, None)
            if entry is not None:
                freed(entry)
            continue
        if kind not in allocs:
            continue  # mmap/munmap: arenas that pymalloc's own records already cover
        site, stack = site_for(record)
        if pending is not None:
            if not _is_frame(pending, record.tid, stack, frame_sizes, kinds):
                account(*pending[:4])
            elif user(stack[len(stack) - len(pending[5]) - 1][1]):
                close_visit()  # a call into the user's code: the calling line's visit is over
        pending = (site, record.size, record.address, kind, record.tid, stack)
    if pending is not None:
        account(*pending[:4])
    close_visit()
    for record in reader.get_leaked_allocation_records(merge_threads=True):
        if record.allocator in allocs:
            site_for(record)[0].alive_at_end += record.n_allocations
    reader.close()
    for key in [k for k, site in sites.items() if site.allocations == 0]:
        del sites[key]
    _owners(sites)

    for site in sites.values():
        _judge(site, short, min_count)
    ranked = sorted(sites.values(), key=lambda s: (not s.candidate, -(s.bytes + s.owned_bytes), s.site))
    return Profile(
        target=target,
        ended=ended,
        seconds=seconds,
        gc_collections=list(gc_collections),
        short=short,
        sites=ranked,
        estimate=_estimate(ranked, gc_collections, pymalloc_by_site),
    )


def _is_frame(
    pending: tuple[Any, ...],
    tid: int,
    stack: tuple[Any, ...],
    frame_sizes: dict[tuple[str, str], Counter[int]],
    kinds: Any,
) -> bool:
    """Whether ``pending`` (the allocation before one made with ``stack``) was the frame object
    of a call that began right after it, from the same line."""
    _, size, _, kind, pending_tid, pending_stack = pending
    depth = len(pending_stack)
    if tid != pending_tid or kind != kinds.PYMALLOC_MALLOC or len(stack) <= depth:
        return False
    if stack[len(stack) - depth :] != pending_stack:
        return False  # not a call from the line that made ``pending``
    function, filename, _ = stack[len(stack) - depth - 1]
    sizes = frame_sizes.setdefault((function, filename), Counter())
    sizes[size] += 1
    return bool(sizes.most_common(1)[0][0] == size)


def _owners(sites: dict[str, Site]) -> None:
    """A site whose freed bytes were nearly all claimed by one other site's objects is owned by
    it; the owner counts what it owns (one level: an owner's own owner is not followed)."""
    for site in sites.values():
        if not site.owned_by or site.site == NO_SITE:
            continue
        owner, claimed = site.owned_by.most_common(1)[0]
        freed = site.bytes - site.freed_in_visit_bytes
        if owner in sites and owner != NO_SITE and freed > 0 and claimed >= OWNED_SHARE * freed:
            site.owner = owner
    for site in sites.values():
        if site.owner is not None and sites[site.owner].owner is None:
            sites[site.owner].owned_bytes += site.bytes
            sites[site.owner].owned_allocations += site.allocations


def _judge(site: Site, short: int, min_count: int) -> None:
    if site.sizes:
        typical, _ = max(site.sizes.items(), key=lambda kv: (kv[0] * kv[1], kv[0]))
        site.typical_size = typical
        site.typical_count = site.sizes[typical]
        near = sum(s * n for s, n in site.sizes.items() if typical / 2 <= s <= typical * 2)
        site.uniformity = near / site.bytes if site.bytes else 1.0
    alive = site.alive_at_end / site.allocations if site.allocations else 0.0
    temporary = site.freed_in_visit_bytes / site.bytes if site.bytes else 0.0
    freed = 1 - alive
    owned_per_visit = site.owned_bytes // site.visits if site.visits else 0
    if site.site == NO_SITE:
        site.why = "allocated by the interpreter or libraries with no frame of your code on the stack"
    elif site.owner is not None:
        site.why = (
            f"freed with the objects made at {os.path.basename(site.owner)}: pooling those saves these too"
        )
    elif alive > ALIVE_SHARE:
        site.why = (
            f"objects live on: {site.alive_at_end:,} of {site.allocations:,} still alive at exit "
            "(a cache or a long-lived structure)"
        )
    elif site.typical_count < min_count:
        site.why = (
            f"rare: {site.typical_count:,} visits made {site.typical_size:,} B (fewer than {min_count:,})"
        )
    elif site.typical_size + owned_per_visit < MIN_SIZE:
        site.why = (
            f"small: {site.typical_size + owned_per_visit:,} B objects come from pymalloc's free lists, and "
            "many are the interpreter's own temporaries, which no pool can hold"
        )
    elif temporary >= TEMPORARY_SHARE:
        site.why = (
            f"temporaries of the line: {temporary:.0%} of its bytes freed before the line was done (a "
            "library's scratch space, a result thrown away), nothing your code holds to pool"
        )
    elif site.short_lived_share < SHORT_SHARE and not (
        freed >= FREED_SHARE and site.peak_alive * BATCH_REUSE <= site.visits
    ):
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
        owns = f" (and {owned_per_visit:,} B a visit of what they own)" if owned_per_visit else ""
        if site.short_lived_share >= SHORT_SHARE:
            lived = f"{site.short_lived_share:.0%} of the bytes freed within {short} visits"
        else:
            lived = f"freed in batches, at most {site.peak_alive:,} alive at once"
        site.why = f"{site.typical_count:,} visits made {site.typical_size:,} B{owns}, {lived}: pool them"


def _estimate(
    ranked: Sequence[Site], gc_collections: Sequence[int], pymalloc_by_site: Counter[str]
) -> Estimate:
    """Every allocation of the candidates and of what they own, less the ones alive at the end
    (a pool keeps those) and the first of each object a pool would hold (its peak)."""
    chosen = [s for s in ranked if s.candidate]
    owned = {s.site for s in ranked if s.owner in {c.site for c in chosen}}
    pymalloc = sum(pymalloc_by_site.values())
    counted = [*(s.site for s in chosen), *owned]
    share = sum(pymalloc_by_site[site] for site in counted) / pymalloc if pymalloc else 0.0

    def kept(site: Site) -> float:
        """The share a pool would still make: what is alive at the end, and the pool's own fill."""
        return min(1.0, site.alive_at_end / max(site.allocations, 1) + site.peak_alive / max(site.visits, 1))

    allocations = sum((s.allocations + s.owned_allocations) * (1 - kept(s)) for s in chosen)
    saved = sum((s.bytes + s.owned_bytes) * (1 - kept(s)) for s in chosen)
    return Estimate(
        sites=len(chosen),
        allocations=int(allocations),
        bytes=int(saved),
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


MAX_OPS = 10**9
"""The most operations ``doctor --ops`` and ``profile --ops`` take (a billion: hours of any scenario)."""


def _check_name(name: str) -> None:
    if not name.replace("-", "_").isidentifier() or name.startswith("-"):
        raise UsageError(f"--scaffold takes a name like my-buffer, not {name!r}")


def check_scaffold_name(name: str) -> Path:
    """The file ``--scaffold NAME`` would write, checked before anything runs."""
    _check_name(name)
    path = Path("scenarios") / f"{name.replace('-', '_')}.py"
    if path.exists():
        raise UsageError(f"{path} exists: choose another --scaffold name or remove it")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"{path.parent} is a file: --scaffold writes into a scenarios folder there")
    return path


def scaffold(site: Site, name: str) -> str:
    """The source of a scenario whose ``new()`` makes an object like ``site``'s."""
    _check_name(name)
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
        params, annotation = f'{{"size": {size}}}', "bytearray"
    else:
        new = f"return {kind}()"
        fill = "buf.extend(range(16))" if kind == "list" else "buf.update(zip(range(16), range(16)))"
        use = f"# The work your code does with the object. Here: fill it.\n        {fill}"
        setup = ""
        params, annotation = "{}", kind
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

    def use(self, buf: {annotation}) -> None:
        {use}

    # Define reset() if use() leaves state the next user must not see; the pools call it once
    # per reuse, and `poolbench doctor {name}` reports dirty reuse when it is missing.
    # def reset(self, buf: {annotation}) -> None:
    #     {reset}
'''


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
