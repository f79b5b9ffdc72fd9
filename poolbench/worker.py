"""The worker process: ``python -m poolbench.worker`` measures one (none, pool) pair and exits.

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

from . import __version__, env, layout
from .counting import UNAVAILABLE, memray_available
from .discovery import ScenarioRef, load_ref
from .measure import measure_group
from .scenario import SkipScenario
from .settings import Settings
from .strategies import build_strategies


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    seed = int(spec.get("layout_seed", 0))
    keep = layout.shift(seed, 0)
    cls = load_ref(ScenarioRef.from_json(spec["scenario"]))
    scenario = cls(spec["params"])
    threads = int(spec["threads"])
    scenario.setup()
    try:
        strategies = build_strategies(scenario, list(spec["pools"]), threads)
        keep.append(layout.shift(seed, 1))
        count = bool(spec.get("count_allocs", True))
        pools = measure_group(
            scenario,
            strategies,
            threads,
            Settings.from_json(spec["settings"]),
            count_allocs=count and memray_available(),
            loops=spec.get("loops"),
        )
    finally:
        scenario.teardown()
    answer: dict[str, Any] = {
        "ok": True,
        "pools": pools,
        "interpreter": env.interpreter(),
        "version": __version__,
    }
    if count and not memray_available():
        answer["not_counted"] = UNAVAILABLE
    del keep
    return answer


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
