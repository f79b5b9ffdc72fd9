"""``poolbench doctor``: run scenarios under checking pools and collect the misuse found.

Runs in this process, one scenario and pool at a time, single-threaded: findings need call sites,
not timings. A scenario that raises is reported as an error of that run, and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .discovery import ScenarioRef
from .harness import round_up
from .pools import Finding, Pool, checked
from .scenario import Scenario
from .strategies import build_strategies


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
                    kwargs: dict[str, Any] = {"race": race, "name": f"{ref.name} pool={pool_name}"}
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
