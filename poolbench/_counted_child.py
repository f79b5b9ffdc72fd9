"""The process ``poolbench.instructions`` counts under Valgrind: one strategy of one scenario,
``ops`` operations after a warm-up, nothing else (``python -P -m poolbench._counted_child JOB``).

Everything but the ``ops`` operations is the same whatever ``ops`` is, so the difference of two
counts is the operations' own (:func:`poolbench.instructions.count_per_op`).
"""

from __future__ import annotations

import json
import sys

from .loading import ScenarioRef, load_ref
from .strategies import build_strategies, close, fill
from .timing import call

WARM_OPS = 64
"""Operations before the counted ones: a pool that has served, caches and specializations warm."""


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    scenario = load_ref(ScenarioRef.from_json(job["scenario"]))(job["params"])
    if scenario.is_async():
        print("instruction counts take synchronous scenarios", file=sys.stderr)
        return 2
    call(scenario.setup)
    try:
        (strategy,) = build_strategies(scenario, [job["strategy"]], 1)
        batch: int = scenario.params["batch"]
        fill(strategy, batch)
        run = scenario.timed()
        warm = max(batch, WARM_OPS // batch * batch)
        run(warm, strategy.get, strategy.put)
        ops = max(batch, int(job["ops"]) // batch * batch)
        run(ops, strategy.get, strategy.put)
        close([strategy])
    finally:
        call(scenario.teardown)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
