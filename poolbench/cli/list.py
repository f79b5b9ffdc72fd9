"""``poolbench list``: the scenarios and pool strategies poolbench can see."""

from __future__ import annotations

from ..discovery import discover
from ..pools import STRATEGIES, plugins
from ._app import ScenarioDirs, app, console, warn


@app.command(name="list")
def list_(scenarios_dir: ScenarioDirs = None) -> None:
    """List scenarios (built-in, ./scenarios, --scenarios-dir, entry points) and pool strategies."""
    found = discover(scenarios_dir or [])
    found_plugins, problems = plugins()
    from ..render.listing import pool_table, scenario_table

    console.print(scenario_table(found))
    console.print(pool_table(STRATEGIES, found_plugins))
    for name, error in problems:
        warn(f"pool plugin {name} did not load: {error}")
    for problem in found.problems:
        warn(f"{problem.source} did not load: {problem.error}")
