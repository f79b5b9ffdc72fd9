"""Instructions and simulated cache misses per operation, counted under Valgrind's callgrind.

Counted, not timed: a Python process run under Valgrind executes the same instructions every time
for the same binary, inputs, hash seed and heap, whatever else the machine does. One counted
process (two on a machine with two cores or more) imports poolbench once and forks a child a
strategy, each from the same heap (``poolbench._counted_child``); the child runs its strategy
``low`` and then ``high`` operations between markers, and ``(count(high) - count(low)) /
(high - low)`` is one operation's: every one-time cost (the interpreter's start, imports, setup,
the warm-up, the marker itself) is in neither or in both.

The cache figures are callgrind's simulation of fixed caches (:data:`CACHES`), and the estimated
cycles follow KCachegrind's documented cost model:
``Ir + 10 x (first-level misses) + 100 x (last-level misses)``.

A single thread's work only: Valgrind runs one thread at a time, so contention and a pool's waits
are invisible under it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ._counted_child import AGAIN
from ._valgrind import requests
from .errors import PoolbenchError, UsageError
from .loading import ScenarioRef
from .processes import ForkServer, kill_group, probe

EVENTS = ("Ir", "I1mr", "ILmr", "Dr", "D1mr", "DLmr", "Dw", "D1mw", "DLmw")
"""callgrind's events with ``--cache-sim=yes`` (:class:`Counts`' fields; its files name them)."""
L1_COST = 10
LL_COST = 100
"""KCachegrind's cycle estimate: a first-level miss costs 10 cycles, a last-level miss 100."""
MARKER = "getppid"
"""The C library function whose calls separate a counted process's phases (``os.getppid()``; see
``poolbench._counted_child``): callgrind dumps its counts before each."""
CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64")
"""The simulated caches, fixed (size, ways, line): 32 KiB 8-way first level for instructions and
data, an 8 MiB 16-way last level, 64-byte lines; so misses do not depend on the machine's own."""
HASH_SEED = "0"
"""Every counted process hashes alike (PYTHONHASHSEED): dict and set layouts, and so the count."""


class ValgrindMissing(UsageError):
    def __init__(self) -> None:
        super().__init__(
            "counting instructions needs Valgrind, which is not installed",
            hint="apt-get install valgrind (Debian, Ubuntu), dnf install valgrind (Fedora), brew install valgrind",
        )


class CountFailed(PoolbenchError):
    """A counted process that did not finish (the scenario raised, Valgrind failed)."""


@dataclass(frozen=True)
class Counts:
    """callgrind's totals, or per-operation figures (floats) after :meth:`per_op`."""

    Ir: float
    I1mr: float
    ILmr: float
    Dr: float
    D1mr: float
    DLmr: float
    Dw: float
    D1mw: float
    DLmw: float

    @property
    def l1_misses(self) -> float:
        return self.I1mr + self.D1mr + self.D1mw

    @property
    def ll_misses(self) -> float:
        return self.ILmr + self.DLmr + self.DLmw

    @property
    def est_cycles(self) -> float:
        return self.Ir + L1_COST * self.l1_misses + LL_COST * self.ll_misses

    def minus(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, e) - getattr(other, e) for e in EVENTS))

    def per_op(self, ops: int) -> Counts:
        return Counts(*(getattr(self, e) / ops for e in EVENTS))

    def to_json(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def valgrind() -> str:
    """The path of ``valgrind``, or :class:`ValgrindMissing` (one line, exit 2)."""
    found = shutil.which("valgrind")
    if found is None:
        raise ValgrindMissing()
    return found


def counted_on(metadata: Mapping[str, Any]) -> dict[str, str]:
    """What a count depends on beyond the code: Valgrind's version, the interpreter's build (from
    the result's ``metadata``, which has it already), the C library's version, and the processor's
    model and features (the C library picks its ``memset`` and ``memcpy`` by them, and Valgrind
    passes most of them through). Counts made where any of these differ are not compared
    (``compare`` says so)."""
    try:
        tool = probe([valgrind(), "--version"], 60).stdout.strip()
    except (OSError, subprocess.SubprocessError, ValgrindMissing):
        tool = "?"
    flags = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
        flags = next((line.partition(":")[2] for line in info if line.startswith("flags")), "")
    return {
        "valgrind": tool,
        "python": f"{metadata.get('python_version', '?')} {metadata.get('python_build', '')}".strip(),
        "libc": " ".join(platform.libc_ver()) or "?",
        "cpu": str(metadata.get("cpu_model", "?")),
        "cpu_features": hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:16],
    }


def parse(text: str) -> Counts:
    """The totals of a callgrind (or cachegrind) output file: its ``events:`` and ``summary:`` lines."""
    events: list[str] = []
    summary: list[str] = []
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            summary = line.split()[1:]
    if not events or not summary or len(events) < len(summary):
        raise CountFailed("Valgrind wrote no summary (was --cache-sim=yes given?)")
    # callgrind leaves out its summary's trailing zeros.
    found = dict(zip(events, [float(v) for v in summary] + [0.0] * (len(events) - len(summary)), strict=True))
    missing = [e for e in EVENTS if e not in found]
    if missing:
        raise CountFailed(f"Valgrind counted no {', '.join(missing)} (was --cache-sim=yes given?)")
    return Counts(*(found[e] for e in EVENTS))


@dataclass(frozen=True)
class Job:
    """One scenario, with its parameters, and the strategies of it to count."""

    ref: ScenarioRef
    params: dict[str, Any]
    strategies: tuple[str, ...]

    def task(self, strategy: str, ops: tuple[int, int]) -> dict[str, Any]:
        """What a counted child reads (its task file): one strategy's, nothing of the others, so
        its heap is the same whatever else the job counts."""
        return {"scenario": self.ref.to_json(), "params": self.params, "strategy": strategy, "ops": list(ops)}


@dataclass(frozen=True)
class PerOp:
    """One strategy's figures per operation (the median of its counts), the operation counts they
    came from, and how far its counts were apart (0 where there was one, or every one agreed)."""

    strategy: str
    counts: Counts
    ops: tuple[int, int]
    repeats: int = 1
    spread: float = 0.0
    """(highest - lowest) / median instructions per op over the repeats."""

    def to_json(self) -> dict[str, float]:
        return {**self.counts.to_json(), "repeats": self.repeats, "spread": self.spread}


OPS = (50, 150)
"""The two runs of a strategy, in operations (rounded to whole batches): per op = their difference.
Counted, not timed, so a few operations give the same figure every time; more only cost time."""


def lanes_of() -> int:
    """Strategies counted at once: one a core, at most two (a counted Python takes hundreds of MiB)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


class CountInterrupted(KeyboardInterrupt):
    """Ctrl-C while counting: the counted process is stopped; :attr:`found` holds what it finished."""

    def __init__(self, found: list[dict[str, PerOp | str]]) -> None:
        super().__init__()
        self.found = found


def count_jobs(
    jobs: Sequence[Job], ops: tuple[int, int] = OPS, *, python: str = sys.executable, timeout: float = 600.0,
    on_counted: Callable[[int], None] | None = None,
) -> list[dict[str, PerOp | str]]:  # fmt: skip
    """Each job's strategies counted per operation under callgrind (one process, a forked child a
    strategy: ``poolbench._counted_child``): for each job, its strategies' figures by name, or the
    one line saying why one was not counted. ``timeout`` is a strategy's; ``on_counted`` hears how
    many strategies are done as they finish. Ctrl-C stops the process and raises
    :class:`CountInterrupted` with the strategies it finished."""
    tool = valgrind()
    low, high = ops
    if not 0 < low < high:
        raise UsageError(f"operation counts must grow: {low} then {high}")
    if not jobs:
        return []
    tasks = [(j, name) for j, job in enumerate(jobs) for name in job.strategies]
    with tempfile.TemporaryDirectory(prefix="poolbench-instr-") as tmp:
        folder = Path(tmp)
        for k, (j, name) in enumerate(tasks):
            (folder / f"task-{k:08d}.json").write_text(json.dumps(jobs[j].task(name, ops)))
        # Where the child can switch callgrind on and off (client requests), its start-up, imports
        # and setups run uninstrumented; elsewhere all of it is simulated: the same counts, slower.
        switch = requests() is not None
        cmd = [tool, "--tool=callgrind", "--cache-sim=yes", *CACHES, f"--dump-before={MARKER}",
               f"--instr-atstart={'no' if switch else 'yes'}", f"--callgrind-out-file={folder / 'cg.%p'}",
               python, "-P", "-m", "poolbench._counted_child", "1" if switch else "0"]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}  # pymalloc kept: it is what pooling saves work in
        served = _Served(len(tasks))
        try:
            _serve(cmd, env, folder, served, timeout, on_counted)
        except KeyboardInterrupt:
            served.stop("interrupted")
            raise CountInterrupted(_read(jobs, tasks, folder, served)) from None
        return _read(jobs, tasks, folder, served)


class _Served:
    """Where the counted processes stand: the requests still to make, and the tasks that left no
    result, with why."""

    def __init__(self, tasks: int) -> None:
        self.todo = [(k, 0) for k in reversed(range(tasks))]
        self.failed: dict[int, str] = {}
        self.done = 0

    def stop(self, why: str) -> None:
        for k, _ in self.todo:
            self.failed.setdefault(k, why)
        self.todo.clear()


@dataclass
class _Lane:
    """One counted process and the task its child is counting."""

    server: ForkServer
    log: Path
    task: tuple[int, int] | None = None
    child: int = 0
    deadline: float = 0.0


START = 120.0
"""Seconds a counted process may take to start under Valgrind and fork its first child."""


def _serve(
    cmd: list[str], env: dict[str, str], folder: Path, served: _Served, timeout: float,
    on_counted: Callable[[int], None] | None,
) -> None:  # fmt: skip
    """Hand the tasks to one counted process a lane, one at a time, and hear how each ended; a
    child past ``timeout`` is killed, and its task says so. The processes are gone on return."""
    lanes: list[_Lane] = []
    try:
        why = ""
        for n in range(min(lanes_of(), len(served.todo))):
            log = folder / f"valgrind-{n}.log"
            with log.open("wb") as err:
                server = ForkServer(cmd, env, start_timeout=START, stderr=err, cwd=folder)
            lane = _Lane(server, log)
            if server.request({}) is None or server.exit_code(START) != 0:  # counts nothing: see main()
                why = _failure(lane)
                continue
            lanes.append(lane)
        if not lanes:
            served.stop(why)
            return
        while served.todo or any(lane.task for lane in lanes):
            for lane in lanes:
                if lane.task is None and served.todo and lane.server.alive:
                    lane.task = served.todo.pop()
                    pid = lane.server.request({"task": lane.task[0], "repeat": lane.task[1]})
                    if pid is None:
                        served.failed[lane.task[0]] = _failure(lane)
                        lane.task = None
                        continue
                    lane.child, lane.deadline = pid, time.monotonic() + timeout
            busy = [lane for lane in lanes if lane.task]
            if not busy:
                served.stop(_failure(lanes[0]) if lanes else "not counted")
                break
            for lane in busy:
                code = lane.server.exit_code(0.1 / len(busy))
                if code is None:
                    if time.monotonic() > lane.deadline:
                        assert lane.task is not None
                        served.failed.setdefault(lane.task[0], f"took over {timeout:g} s")
                        kill_group(lane.child)
                    continue
                assert lane.task is not None
                k, repeat = lane.task
                lane.task = None
                if k not in served.failed:
                    if code == AGAIN:
                        served.todo.append((k, repeat + 1))
                        continue
                    if not (folder / f"{k:08d}-{repeat}.json").exists():
                        how = f"signal {-code}" if code < 0 else f"exit status {code}"
                        served.failed[k] = (_failure(lane) if not lane.server.alive
                                            else f"the counted process died ({how})")  # fmt: skip
                served.done += 1
                if on_counted:
                    on_counted(served.done)
    finally:  # done, or Ctrl-C: no counted process left behind
        for lane in lanes:
            lane.server.close()


def _failure(lane: _Lane) -> str:
    """Why a counted process could not go on: the last line Valgrind or Python wrote."""
    lane.server.close()
    text = lane.log.read_text(errors="replace") if lane.log.exists() else ""
    lines = [line for line in text.splitlines() if line and not line.startswith(("==", "--"))]
    return "the counted process failed: " + (lines[-1] if lines else "it ended")


def _read(
    jobs: Sequence[Job], tasks: Sequence[tuple[int, str]], folder: Path, served: _Served
) -> list[dict[str, PerOp | str]]:
    """The counted tasks as figures per op (the median of their repeats), and the one line saying
    why where a task was not counted."""
    found: list[dict[str, PerOp | str]] = [{} for _ in jobs]
    for k, (j, name) in enumerate(tasks):
        label = f"{jobs[j].ref.name} pool={name}"
        repeats: list[Counts] = []
        span = (0, 0)
        for path in sorted(folder.glob(f"{k:08d}-*.json")):
            entry = json.loads(path.read_text())
            if "error" in entry:
                found[j][name] = f"{label}: {entry['error']}"
                break
            dumps = _dumps(folder, entry["pid"])
            if len(dumps) != entry["marks"]:
                # Something else called the marker: which file is which run cannot be told.
                found[j][name] = (f"{label}: {len(dumps)} callgrind dumps for {entry['marks']} markers "
                                  f"({MARKER}() called elsewhere)")  # fmt: skip
                break
            first, second = (dumps[n] for n in entry["dumps"])
            n1, n2 = span = entry["ops"][0], entry["ops"][1]
            per_op = second.minus(first).per_op(n2 - n1)
            # A count that does not grow with the operations (misses of a warm loop) can differ by a
            # few in either direction between the two runs: below zero, it reads 0.
            repeats.append(Counts(*(max(0.0, getattr(per_op, e)) for e in EVENTS)))
        if name in found[j]:
            continue
        if k in served.failed or not repeats:
            found[j][name] = f"{label}: {served.failed.get(k, 'not counted')}"
            continue
        median = Counts(*(statistics.median(getattr(c, e) for c in repeats) for e in EVENTS))
        irs = [c.Ir for c in repeats]
        spread = (max(irs) - min(irs)) / median.Ir if median.Ir else 0.0
        found[j][name] = PerOp(name, median, span, len(repeats), spread)
    return found


def _dumps(folder: Path, pid: int) -> dict[int, Counts]:
    """callgrind's files of one process by part number: ``cg.<pid>.N`` is the N-th marker's (the
    counts since the one before)."""
    parts: dict[int, Counts] = {}
    for path in folder.glob(f"cg.{pid}.*"):
        part = path.suffix[1:]
        if part.isdigit():
            parts[int(part)] = parse(path.read_text())
    return parts


def count_per_op(
    ref: ScenarioRef, params: dict[str, Any], strategies: Sequence[str], ops: tuple[int, int] = OPS,
    *, python: str = sys.executable, timeout: float = 600.0,
) -> list[PerOp]:  # fmt: skip
    """The strategies of one scenario counted per operation; :class:`CountFailed` if one was not."""
    (found,) = count_jobs([Job(ref, params, tuple(strategies))], ops, python=python, timeout=timeout)
    failed = [v for v in found.values() if isinstance(v, str)]
    if failed:
        raise CountFailed(f"not counted: {failed[0]}")
    return [v for v in found.values() if isinstance(v, PerOp)]


def figures(counts: dict[str, float] | None) -> Counts | None:
    """A cell's stored counts (:attr:`poolbench.result.Cell.instructions`) as :class:`Counts`."""
    if not counts or any(e not in counts for e in EVENTS):
        return None
    return Counts(*(counts[e] for e in EVENTS))
