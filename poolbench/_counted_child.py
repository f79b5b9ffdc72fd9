"""The process ``poolbench.instructions`` counts under Valgrind's callgrind
(``python -P -m poolbench._counted_child SWITCH`` in a folder of tasks: one a core, at most two).

It starts, imports poolbench, and then forks one child a strategy, as ``poolbench.instructions``
asks on its standard input (a :class:`poolbench.processes.ForkServer`): the child loads the scenario, sets it up, builds the strategy, warms it, and runs it twice, ``low`` then
``high`` operations, with a marker before, between and after. The marker is ``os.getppid()``:
callgrind, started with ``--dump-before=getppid``, writes the counts since the previous marker to
a file of their own (``cg.<pid>.<n>``), so the two runs' counts are two files, and their difference
over ``high - low`` operations is one operation's (the marker, the run's call and its loop set-up
are in both).

Every strategy starts from the same state, the parent's as it was after its imports (:func:`main`):
what was counted before it (another scenario, another strategy) cannot move its count. Where the child can
switch callgrind on and off (:mod:`poolbench._valgrind`), everything but the counted runs and a
short run before them that warms the simulated caches goes uninstrumented, at a few times native
speed instead of fifty or more.

A strategy whose operations ran on more than one thread is counted again (Valgrind runs one thread
at a time and switches between them as the machine's time allows, so its counts can differ a
little between repeats: the spread is reported). Each child leaves ``<task>-<repeat>.json`` (which
dumps hold its runs, or the error it raised); one that dies or hangs leaves nothing, and
``poolbench.instructions`` says so.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, NoReturn

from ._valgrind import START_INSTRUMENTATION, STOP_INSTRUMENTATION, Request, requests
from .loading import ScenarioRef, load_ref
from .processes import NO_REQUEST, detach, die_with_parent, read_request, serve_forks
from .strategies import build_strategies, close, fill
from .timing import call

WARM_OPS = 64
"""Operations before the counted ones, uninstrumented: a pool that has served, specializations made."""
CACHE_WARM_OPS = 32
"""Operations with the instrumentation on before the first marker: the simulated caches warm."""


MARKS = 3
"""Markers a counted child makes: before its low run, between the runs, after the high one. The
callgrind dumps they end are numbered from 1 (the first holds the cache warm-up): 2 is the low
run's, 3 the high run's. More dumps than markers means the scenario called the marker too."""


def _whole(ops: int, batch: int) -> int:
    """``ops`` in whole batches, one at least."""
    return max(batch, ops // batch * batch)


def _same_randomness() -> None:
    """The same "random" numbers and temporary names in every count: a random name of another
    length or other characters costs other instructions wherever it goes (a temporary database's
    path, opened every operation, moved its count by 0.3% between repeats)."""
    random.seed(0)
    sequence = getattr(tempfile, "_RandomNameSequence", None)
    if sequence is not None:  # tempfile's names come from a Random of its own, seeded at random
        names = sequence()
        names._rng, names._rng_pid = random.Random(0), os.getpid()
        tempfile._name_sequence = names  # type: ignore[attr-defined]


def _strategy(task: dict[str, Any], switch: Request | None) -> dict[str, Any]:
    """Count one strategy (in a forked child): which dumps hold its two runs."""
    _same_randomness()
    scenario = load_ref(ScenarioRef.from_json(task["scenario"]))(task["params"])
    if scenario.is_async():
        raise ValueError("instruction counts take synchronous scenarios")
    call(scenario.setup)
    batch: int = scenario.params["batch"]
    low = _whole(int(task["ops"][0]), batch)
    high = max(low + batch, _whole(int(task["ops"][1]), batch))
    (strategy,) = build_strategies(scenario, [task["strategy"]], 1)
    fill(strategy, batch)
    run = scenario.timed()
    run(_whole(WARM_OPS, batch), strategy.get, strategy.put)
    # The collector's count starts from nothing, so where its collections fall among the counted
    # operations is the strategy's own doing.
    gc.collect()
    if switch:
        switch(START_INSTRUMENTATION)
    run(_whole(CACHE_WARM_OPS, batch), strategy.get, strategy.put)
    os.getppid()  # marker 1
    run(low, strategy.get, strategy.put)
    os.getppid()  # marker 2: dump 2 is the low run
    run(high, strategy.get, strategy.put)
    os.getppid()  # marker 3: dump 3 is the high run
    threads = threading.active_count()
    if switch:
        switch(STOP_INSTRUMENTATION)
    close([strategy])
    call(scenario.teardown)
    return {"dumps": [2, 3], "marks": MARKS, "ops": [low, high], "threads": threads}


def _child(switch: Request | None) -> NoReturn:
    """A forked child: its request from stdin (``{"task": k, "repeat": r}``, or ``{}`` to count
    nothing), its count, its result file, its exit status."""
    request = read_request()
    if request is None:
        os._exit(NO_REQUEST)
    if "task" not in request:
        os._exit(0)
    task, repeat = int(request["task"]), int(request["repeat"])
    detach()  # past the timeout, its group is killed; a scenario's output goes nowhere
    threads = 1
    try:
        found = _strategy(json.loads(Path(f"task-{task:08d}.json").read_text()), switch)
        threads = found["threads"]
    except BaseException as exc:  # noqa: BLE001 - reported on the strategy's line
        found = {"error": f"{type(exc).__name__}: {exc}"}
    found["pid"] = os.getpid()
    Path(f"{task:08d}-{repeat}.part").write_text(json.dumps(found))
    Path(f"{task:08d}-{repeat}.part").rename(f"{task:08d}-{repeat}.json")
    os._exit(AGAIN if threads > 1 and repeat == 0 else 0)


AGAIN = 10
"""A child's exit status asking for a second count (its operations ran on several threads)."""


def main(argv: list[str]) -> int:
    """``SWITCH`` (1 where the instrumentation can be switched: ``--instr-atstart=no``), run in the
    folder of the tasks (``task-<k>.json``): fork a child per request (:func:`serve_forks`).

    The loop holds nothing of the tasks (a child reads its own request and file) and every turn
    leaves the same objects behind, so every child starts from the same heap, whatever else is
    counted and in whatever order: its instructions do not depend on the matrix around it. The
    first request counts nothing: its turn leaves behind what every later turn finds (the last
    pid and status), so the first real task starts from the same heap as the rest."""
    die_with_parent()
    switch = requests() if argv[1] == "1" else None
    gc.collect()
    return serve_forks(lambda: _child(switch))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
