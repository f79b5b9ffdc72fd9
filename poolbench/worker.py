"""The worker process: ``python -m poolbench.worker`` runs one job and exits.

It reads a job (:mod:`poolbench.protocol`) as JSON on stdin and writes its answer to the file the
job names (not to stdout, which a scenario may print to). It imports only what measuring needs: no
typer, rich, scipy or matplotlib.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from . import __version__, env, layout
from .counting import count_group, memray_available, unavailable
from .loading import load_ref
from .measure import measure_group
from .processes import NO_REQUEST, PARENT_ENV, detach, die_with_parent, read_request, serve_forks
from .protocol import Answer, CountJob, DoctorJob, MeasureJob, job_from_json
from .scenario import Scenario, SkipScenario
from .strategies import Strategy, build_strategies, close
from .timing import NotAwaited, call, cancel_pending, use_loop

Publish = Callable[[Answer], None]

TEARDOWN_SECONDS = 10.0
"""How long a scenario's ``teardown`` may take once the answer is written; the worker then
leaves without it (the figures are in)."""


@contextmanager
def _scenario(job: MeasureJob | CountJob) -> Iterator[tuple[Scenario, list[Strategy]]]:
    """The job's scenario, set up, and its strategies, in a heap shifted by the job's layout seed
    before ``setup`` and again after the pools are built; torn down at the end."""
    keep = layout.shift(job.layout_seed, 0)
    scenario = load_ref(job.scenario)(job.params)
    problem = type(scenario).not_runnable()
    if problem is not None:
        raise NotAwaited(problem)
    call(scenario.setup)
    try:
        strategies = build_strategies(scenario, list(job.pools), job.members)
        keep.append(layout.shift(job.layout_seed, 1))
        yield scenario, strategies
    finally:
        del keep
        _teardown(scenario)


def _teardown(scenario: Scenario) -> None:
    """``scenario.teardown()``, at most :data:`TEARDOWN_SECONDS` (a ``SIGALRM`` ends it, in the
    main thread, where a scenario's objects were made: sqlite's connections refuse to close in
    another). A teardown that hangs no longer costs the figures taken before it: the worker was
    killed by ``--timeout`` with its answer unwritten, and the cell read "timed out"."""

    def expire(signum: int, frame: object) -> None:
        raise TeardownHung(f"{type(scenario).__name__}.teardown() still ran after {TEARDOWN_SECONDS:g} s")

    if not hasattr(signal, "setitimer"):  # no interval timer on this platform: unbounded
        call(scenario.teardown)
        return
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, TEARDOWN_SECONDS)
    try:
        call(scenario.teardown)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class TeardownHung(Exception):
    pass


def _published(job: MeasureJob | CountJob, publish: Publish, make: Callable[..., Answer]) -> Answer:
    """The answer ``make(scenario, strategies)`` gives, published before the scenario is torn
    down; a teardown that raises or hangs afterwards adds a warning, and the figures stand."""
    answer: Answer | None = None
    try:
        with _scenario(job) as (scenario, strategies):
            answer = make(scenario, strategies)
            publish(answer)
    except BaseException as exc:
        if answer is None:
            raise
        answer.warnings.append(f"teardown failed after the figures were taken: {type(exc).__name__}: {exc}")
        publish(answer)
    assert answer is not None
    return answer


def measure(job: MeasureJob, publish: Publish = lambda answer: None) -> Answer:
    def make(scenario: Scenario, strategies: list[Strategy]) -> Answer:
        pools = measure_group(
            scenario, strategies, job.members, job.settings, detail=job.detail, loops=job.loops
        )
        answer = Answer(ok=True, pools=pools, interpreter=env.interpreter(), version=__version__)
        close(strategies)
        answer.warnings.extend(_left_pending())
        return answer

    return _published(job, publish, make)


def count(job: CountJob, publish: Publish = lambda answer: None) -> Answer:
    """A counting process: allocations per op of each strategy, nothing timed."""
    if not memray_available():
        return Answer(ok=True, not_counted=unavailable(), interpreter=env.interpreter(), version=__version__)

    def make(scenario: Scenario, strategies: list[Strategy]) -> Answer:
        found = count_group(scenario, strategies, job.members, job.count_ops)
        close(strategies)
        return Answer(
            ok=True,
            counts={name: one.allocs for name, one in found.items()},
            notes={name: one.warnings for name, one in found.items() if one.warnings},
            interpreter=env.interpreter(),
            version=__version__,
        )

    return _published(job, publish, make)


def _left_pending() -> list[str]:
    """What an async scenario left running on the loop, cancelled, as a warning."""
    left = cancel_pending()
    if not left:
        return []
    return [f"the scenario left {left} asyncio task(s) pending after its operations; they were cancelled"]


def doctor(job: DoctorJob) -> Answer:
    """One (scenario, pool) of ``poolbench doctor``, in this process."""
    from .diagnosis import diagnose_one

    found = diagnose_one(job.scenario, load_ref(job.scenario), job.pool, ops=job.ops, race=job.race)
    diagnosis = {
        "error": found.error,
        "skipped": found.skipped,
        "findings": [f.to_json() for f in found.findings],
    }
    return Answer(ok=True, diagnosis=diagnosis, interpreter=env.interpreter(), version=__version__)


def limit_memory(limit: int | None) -> None:
    """Cap the worker's address space, so a runaway scenario gets a MemoryError, not the OOM killer."""
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_job(data: dict[str, Any]) -> int:
    """Run the job ``data`` describes and write its answer to the file it names; the exit code."""

    def publish(answer: Answer) -> None:
        tmp = data["out"] + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(answer.to_json(), f)
        os.replace(tmp, data["out"])

    try:
        job = job_from_json(data)
        limit_memory(job.memory_limit)
        if not isinstance(job, DoctorJob):
            use_loop(job.loop)
        if isinstance(job, DoctorJob):
            answer = doctor(job)
        elif isinstance(job, CountJob):
            answer = count(job, publish)
        else:
            answer = measure(job, publish)
    except SkipScenario as exc:
        answer = Answer(ok=False, skip=str(exc))
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        answer = Answer(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    publish(answer)
    return 0 if answer.ok or answer.skip is not None else 3


def main() -> int:
    die_with_parent()
    return run_job(json.loads(sys.stdin.read()))


def _leave(code: int) -> NoReturn:
    # Leave at once: a non-daemon thread or a child the scenario left behind must not keep a worker
    # whose answer is written from exiting (the parent would count it as timed out).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve_template() -> int:
    """``python -m poolbench.worker --template``: fork one worker per request
    (:class:`poolbench.spawn.Template` is the parent's side).

    This process imports poolbench's measuring code, then forks each worker from that state
    instead of starting an interpreter: starting one cost about 0.2 s, a fork costs milliseconds.
    It never runs or imports a scenario, so every worker starts from the same clean state and
    imports its scenario itself, as a fresh one would.

    The state must be the same at every fork, or where a worker's buffers land depends on how
    many workers the template forked before it (and a layout seed would not give its layout
    again): so this loop keeps nothing it allocates, and the *worker* reads the request (one line
    of JSON on stdin: the job file, the stderr file, environment to set). Importing the built-in
    scenarios here moved bytes-buffer's pooled buffer where copying into it is slow in 10 of 40
    first-forked workers, against 2 of 40 without. The answer is two lines on stdout: ``pid N``
    when the worker starts and ``exit N`` when it ends (negative: the signal that ended it). One
    worker at a time; the end of stdin ends the template.
    """
    die_with_parent()
    me = str(os.getpid())
    return serve_forks(lambda: _leave(_forked(me)))


def _forked(template: str) -> int:
    """The forked worker: what a fresh ``python -m poolbench.worker`` would be, then its job."""
    try:
        request = read_request()
        if request is None:
            return NO_REQUEST
        detach(request["stderr"])  # the template's request and reply pipes are not the worker's
        os.environ.update(request["env"])
        os.environ[PARENT_ENV] = template  # its parent is the template, which dies with the run
        random.seed()  # a spawned worker's would be seeded from the OS, not copied from the template's
        die_with_parent()
        with open(request["job"], encoding="utf-8") as f:
            data = json.load(f)
        return run_job(data)
    except BaseException:  # noqa: BLE001 - a worker never returns into the template's loop
        traceback.print_exc()
        return 3


if __name__ == "__main__":
    _leave(serve_template() if sys.argv[1:] == ["--template"] else main())
