"""The worker process: ``python -m poolbench.worker`` runs one job and exits.

It reads a job (:mod:`poolbench.protocol`) as JSON on stdin and writes its answer to the file the
job names (not to stdout, which a scenario may print to). It imports only what measuring needs: no
typer, rich, scipy or matplotlib.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

from . import __version__, env, layout
from .counting import memray_available, unavailable
from .discovery import load_ref
from .measure import measure_group
from .protocol import Answer, DoctorJob, MeasureJob, job_from_json
from .scenario import SkipScenario
from .strategies import build_strategies
from .worker_process import die_with_parent


def measure(job: MeasureJob) -> Answer:
    keep = layout.shift(job.layout_seed, 0)
    cls = load_ref(job.scenario)
    scenario = cls(job.params)
    scenario.setup()
    try:
        strategies = build_strategies(scenario, list(job.pools), job.threads)
        keep.append(layout.shift(job.layout_seed, 1))
        counting = job.count_allocs and memray_available()
        pools = measure_group(
            scenario, strategies, job.threads, job.settings, count_allocs=counting, loops=job.loops
        )
    finally:
        scenario.teardown()
    del keep
    return Answer(
        ok=True,
        pools=pools,
        not_counted=unavailable() if job.count_allocs and not counting else None,
        interpreter=env.interpreter(),
        version=__version__,
    )


def doctor(job: DoctorJob) -> Answer:
    """One (scenario, pool) of ``poolbench doctor``, in this process."""
    from .doctor import diagnose_one

    found = diagnose_one(job.scenario, load_ref(job.scenario), job.pool, ops=job.ops, race=job.race)
    diagnosis = {"error": found.error, "findings": [f.to_json() for f in found.findings]}
    return Answer(ok=True, diagnosis=diagnosis, interpreter=env.interpreter(), version=__version__)


def limit_memory(limit: int | None) -> None:
    """Cap the worker's address space, so a runaway scenario gets a MemoryError, not the OOM killer."""
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> int:
    die_with_parent()
    data: dict[str, Any] = json.loads(sys.stdin.read())
    try:
        job = job_from_json(data)
        limit_memory(job.memory_limit)
        answer = doctor(job) if isinstance(job, DoctorJob) else measure(job)
    except SkipScenario as exc:
        answer = Answer(ok=False, skip=str(exc))
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        answer = Answer(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    tmp = data["out"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(answer.to_json(), f)
    os.replace(tmp, data["out"])
    return 0 if answer.ok or answer.skip is not None else 3


if __name__ == "__main__":
    code = main()
    # Leave at once: a non-daemon thread or a child the scenario left behind must not keep a worker
    # whose answer is written from exiting (the parent would count it as timed out).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
