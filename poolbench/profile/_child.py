"""The profile's child process: ``python -m poolbench.profile SPEC`` runs the target inside
memray's tracker, then writes how it ended and the collections it saw."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ._model import FINISHED, Target


def main(spec_path: str) -> int:
    """The child: run the target inside memray's tracker; write how it ended and the GC counts."""
    import gc
    import runpy
    import signal

    import memray

    from ..processes import PARENT_ENV, die_with_parent

    die_with_parent()
    os.environ.pop(PARENT_ENV, None)  # the program's own children are not poolbench's
    # The parent stops the program at --timeout with SIGINT; a poolbench started in the background
    # of a shell inherits SIGINT ignored, and the program then ran on to the kill 15 s later,
    # its capture (179 MB of a bytearray loop) taking minutes to read.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spec = json.loads(Path(spec_path).read_text())
    target = Target(**{**spec["target"], "args": tuple(spec["target"]["args"])})
    collections = [0, 0, 0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    work = _scenario_work(target) if target.kind == "scenario" else None
    ended = FINISHED
    gc.callbacks.append(count)
    try:
        with memray.Tracker(
            spec["capture"], native_traces=False, trace_python_allocators=True, follow_fork=False
        ):
            try:
                if work is not None:
                    work()
                elif target.kind == "module":
                    sys.argv = [target.name, *target.args]
                    runpy.run_module(target.name, run_name="__main__", alter_sys=True)
                else:
                    sys.argv = [target.name, *target.args]
                    sys.path.insert(0, os.path.dirname(os.path.abspath(target.name)))
                    runpy.run_path(target.name, run_name="__main__")
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    ended = f"exited with status {exc.code}"
            except KeyboardInterrupt:
                ended = "was interrupted"
            except BaseException as exc:  # noqa: BLE001 - how the program ended is reported
                ended = f"raised {type(exc).__name__}: {exc}"
    finally:
        gc.callbacks.remove(count)
        Path(spec["info"]).write_text(json.dumps({"ended": ended, "gc": collections}))
    return 0


def _scenario_work(target: Target) -> Any:
    """``ops`` operations of a scenario under ``pool``, set up before tracing starts."""
    from ..loading import ScenarioRef, load_ref
    from ..strategies import build_strategies
    from ..timing import round_up

    assert target.scenario is not None
    cls = load_ref(ScenarioRef.from_json(target.scenario))
    scenario = cls(dict(target.params))
    scenario.setup()
    [strategy] = build_strategies(scenario, [target.pool], 1)
    ops = round_up(target.ops, scenario.params["batch"])

    def work() -> None:
        try:
            scenario.run(ops, strategy.get, strategy.put)
        finally:
            scenario.teardown()

    return work
