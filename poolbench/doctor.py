"""``poolbench doctor`` as a library call: run scenarios under checking pools, collect the misuse.

One scenario and pool at a time, single-threaded (findings need call sites, not timings), each in
its own worker process with a timeout, as ``run`` measures: a scenario that raises, hangs or
crashes the interpreter is reported as an error of that run, and the others go on. What runs in
the worker is :mod:`poolbench.diagnosis`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .diagnosis import Diagnosis
from .discovery import Discovery, discover
from .errors import UsageError
from .planning import check_pools
from .pools import Finding
from .profile import MAX_OPS
from .protocol import DoctorJob
from .spawn import WorkerFailure, run_worker


@dataclass(frozen=True)
class DoctorRequest:
    scenarios: Sequence[str] = ()
    """Scenario names; none: the built-ins."""
    pools: Sequence[str] = ("sync",)
    """Pools to check (``none`` is left out: it has nothing to misuse)."""
    scenario_dirs: Sequence[Path] = ()
    ops: int = 2000
    race: float = 0.0
    """The fraction of puts dropped at random (0-1), as Go's race detector does."""
    timeout: float = 300.0
    """Seconds one (scenario, pool) may take in its worker."""
    python: str | None = None

    def check(self) -> None:
        """Refuse values no check can run with, as bad input (:class:`UsageError`)."""
        if not 1 <= self.ops <= MAX_OPS:
            raise UsageError(f"--ops takes 1 to {MAX_OPS:,} operations, not {self.ops}")
        if not 0 <= self.race < 1:
            raise UsageError(f"--race must be between 0 and 1, not {self.race:g}")


@dataclass
class DoctorOutcome:
    diagnoses: list[Diagnosis]
    discovery: Discovery

    @property
    def found_misuse(self) -> bool:
        """Whether any check found misuse or could not run (the command's exit code 1)."""
        return any(d.findings or d.error for d in self.diagnoses)


def doctor_session(request: DoctorRequest, *, discovery: Discovery | None = None) -> DoctorOutcome:
    """Check every (scenario, pool) the request names, each in a worker of its own."""
    request.check()
    found = discovery or discover(request.scenario_dirs)
    selected = found.lookup(list(request.scenarios) or found.builtins())
    pools = [p for p in check_pools(list(request.pools)) if p != "none"]
    out = []
    for ref, cls in selected:
        for pool in pools:
            job = DoctorJob(ref, pool, request.ops, request.race)
            answer = run_worker(request.python or sys.executable, job, request.timeout)
            diagnosis = Diagnosis(ref.name, pool, dict(cls.default_params()))
            if isinstance(answer, WorkerFailure):
                diagnosis.error = answer.message
            else:
                found_here = answer.diagnosis or {"error": "the worker sent no findings", "findings": []}
                diagnosis.error = found_here.get("error")
                diagnosis.skipped = found_here.get("skipped")
                diagnosis.findings = [Finding.from_json(f) for f in found_here["findings"]]
            out.append(diagnosis)
    return DoctorOutcome(out, found)
