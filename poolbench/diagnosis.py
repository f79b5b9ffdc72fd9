"""Inside a worker: scenarios run under checking pools, and the misuse each run found.

A doctor's worker process runs one (scenario, pool) here (:func:`diagnose_one`); :func:`diagnose`
runs several in this process, for a library user who needs no isolation. The parent's side is
:mod:`poolbench.doctor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .callsites import site_of
from .loading import ScenarioRef
from .pools import Finding, Pool, checked
from .scenario import Scenario, SkipScenario
from .strategies import build_strategies
from .timing import call, resolve, round_up


@dataclass
class Diagnosis:
    scenario: str
    pool: str
    params: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    """Why the scenario could not run under this pool here (no server, a pool it cannot use):
    nothing was checked, and nothing failed."""


def diagnose_one(ref: ScenarioRef, cls: type[Scenario], pool: str, *, ops: int, race: float) -> Diagnosis:
    [diagnosis] = diagnose([(ref, cls)], [pool], ops=ops, race=race)
    return diagnosis


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
                call(scenario.setup)
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
                    resolve(
                        scenario.timed()(round_up(ops, scenario.params["batch"]), strategy.get, strategy.put)
                    )
                    diagnosis.findings = strategy.pool.checker.finish()  # type: ignore[attr-defined]
                finally:
                    call(scenario.teardown)
            except SkipScenario as exc:
                diagnosis.skipped = str(exc)
            except Exception as exc:  # noqa: BLE001 - a scenario's bug is reported, not raised
                diagnosis.error = f"{type(exc).__name__}: {exc}"
            out.append(diagnosis)
    return out
