"""``poolbench doctor``: run scenarios under checking pools and collect the misuse found.

One scenario and pool at a time, single-threaded (findings need call sites, not timings), each in
its own worker process with a timeout (:func:`diagnose_isolated`), as ``run`` measures: a scenario
that raises, hangs or crashes the interpreter is reported as an error of that run, and the others
go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .discovery import ScenarioRef
from .pools import Finding, Pool, checked
from .pools._checked import site_of
from .scenario import Scenario
from .strategies import build_strategies
from .timing import round_up


@dataclass
class Diagnosis:
    scenario: str
    pool: str
    params: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None


def diagnose_one(ref: ScenarioRef, cls: type[Scenario], pool: str, *, ops: int, race: float) -> Diagnosis:
    [diagnosis] = diagnose([(ref, cls)], [pool], ops=ops, race=race)
    return diagnosis


def diagnose_isolated(
    scenarios: Sequence[tuple[ScenarioRef, type[Scenario]]],
    pools: Sequence[str],
    *,
    ops: int = 2000,
    race: float = 0.0,
    timeout: float = 300.0,
    python: str | None = None,
) -> list[Diagnosis]:
    """:func:`diagnose`, each (scenario, pool) in a fresh worker process that may take ``timeout``."""
    import sys

    from .protocol import DoctorJob
    from .spawn import WorkerFailure, run_worker

    out = []
    for ref, cls in scenarios:
        for pool in pools:
            answer = run_worker(python or sys.executable, DoctorJob(ref, pool, ops, race), timeout)
            diagnosis = Diagnosis(ref.name, pool, dict(cls.default_params()))
            if isinstance(answer, WorkerFailure):
                diagnosis.error = answer.message
            else:
                found = answer.diagnosis or {"error": "the worker sent no findings", "findings": []}
                diagnosis.error = found.get("error")
                diagnosis.findings = [Finding.from_json(f) for f in found["findings"]]
            out.append(diagnosis)
    return out


def diagnose(
    scenarios: Sequence[tuple[ScenarioRef, type[Scenario]]],
    pools: Sequence[str],
    *,
    ops: int = 2000,
    race: float = 0.0,
) -> list[Diagnosis]:
    out = []
    for ref, cls in scenarios:
        for pool_name in pools:
            scenario = cls()
            diagnosis = Diagnosis(ref.name, pool_name, dict(scenario.params))
            try:
                scenario.setup()
                try:
                    # When the scenario's run is poolbench's own, no frame of the user's code calls
                    # get/put: findings then point at the scenario's use() (or new()).
                    fallback = site_of(scenario.use) or site_of(scenario.new)
                    kwargs: dict[str, Any] = {
                        "race": race, "name": f"{ref.name} pool={pool_name}", "fallback_site": fallback,
                    }  # fmt: skip
                    if scenario.overrides("fingerprint"):
                        kwargs["fingerprint"] = scenario.fingerprint

                    def check(pool: Pool[Any], kwargs: dict[str, Any] = kwargs) -> Pool[Any]:
                        return checked(pool, **kwargs)

                    [strategy] = build_strategies(scenario, [pool_name], 1, wrap=check)
                    assert strategy.pool is not None
                    scenario.run(round_up(ops, scenario.params["batch"]), strategy.get, strategy.put)
                    diagnosis.findings = strategy.pool.checker.finish()  # type: ignore[attr-defined]
                finally:
                    scenario.teardown()
            except Exception as exc:  # noqa: BLE001 - a scenario's bug is reported, not raised
                diagnosis.error = f"{type(exc).__name__}: {exc}"
            out.append(diagnosis)
    return out
