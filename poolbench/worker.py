"""The worker process: ``python -m poolbench.worker`` measures one group and exits.

It reads a JSON spec on stdin and writes its JSON answer to the file the spec names (not to
stdout, which a scenario may print to). It imports only what measuring needs: no typer, rich,
scipy or matplotlib.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

from . import __version__, env
from .discovery import ScenarioRef, load_ref
from .measure import Settings, build_strategies, measure_group
from .scenario import SkipScenario


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    cls = load_ref(ScenarioRef.from_json(spec["scenario"]))
    scenario = cls(spec["params"])
    threads = int(spec["threads"])
    scenario.setup()
    try:
        strategies = build_strategies(scenario, list(spec["pools"]), threads)
        pools = measure_group(
            scenario,
            strategies,
            threads,
            Settings(**spec["settings"]),
            count_allocs=spec.get("count_allocs", True),
        )
    finally:
        scenario.teardown()
    return {"ok": True, "pools": pools, "interpreter": env.interpreter(), "version": __version__}


def limit_memory(limit: int | None) -> None:
    """Cap the worker's address space, so a runaway scenario gets a MemoryError, not the OOM killer."""
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> int:
    spec = json.loads(sys.stdin.read())
    try:
        limit_memory(spec.get("memory_limit"))
        answer = run_spec(spec)
    except SkipScenario as exc:
        answer = {"ok": False, "skip": str(exc)}
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        answer = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "where": where,
            "traceback": traceback.format_exc(),
        }
    tmp = spec["out"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(answer, f)
    os.replace(tmp, spec["out"])
    return 0 if answer["ok"] or "skip" in answer else 3


if __name__ == "__main__":
    sys.exit(main())
