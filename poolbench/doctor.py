"""``poolbench doctor``: run scenarios under checking pools and collect the misuse found.

Runs in this process, one scenario and pool at a time, single-threaded: findings need call sites,
not timings. A scenario that raises is reported as an error of that run, and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .discovery import ScenarioRef
from .measure import round_up
from .pools import Finding, checked, create_pool
from .scenario import Scenario


@dataclass
class Diagnosis:
    scenario: str
    pool: str
    params: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None


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
                    reset = scenario.reset if scenario.overrides("reset") else None
                    accept = scenario.accept if scenario.overrides("accept") else None
                    options = {"reset": reset, "accept": accept, **scenario.pool_options(pool_name, 1)}
                    pool = create_pool(pool_name, scenario.new, **options)
                    kwargs: dict[str, Any] = {"race": race, "name": f"{ref.name} pool={pool_name}"}
                    if scenario.overrides("fingerprint"):
                        kwargs["fingerprint"] = scenario.fingerprint
                    pool = checked(pool, **kwargs)
                    scenario.run(round_up(ops, scenario.params["batch"]), pool.get, pool.put)
                    diagnosis.findings = pool.checker.finish()  # type: ignore[attr-defined]
                finally:
                    scenario.teardown()
            except Exception as exc:  # noqa: BLE001 - a scenario's bug is reported, not raised
                diagnosis.error = f"{type(exc).__name__}: {exc}"
            out.append(diagnosis)
    return out
