"""``poolbench list``: the scenarios and pool strategies poolbench can see."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from ..discovery import discover
from ..params import format_size
from ..pools import STRATEGIES, plugins
from ._app import app, console, warn
from .run import ScenarioDirs


def _default(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1024:
        return format_size(value)
    return str(value)


@app.command(name="list")
def list_(scenarios_dir: ScenarioDirs = None) -> None:
    """List scenarios (built-in, ./scenarios, --scenarios-dir, entry points) and pool strategies."""
    found = discover(scenarios_dir or [])
    table = Table(title="scenarios", title_justify="left", header_style="bold")
    for column in ("name", "source", "description", "parameters (defaults)"):
        table.add_column(column)
    for name, (ref, cls) in sorted(found.scenarios.items()):
        params = ", ".join(
            f"{k}={_default(v)}" + (f" ({'|'.join(map(str, cls.choices[k]))})" if k in cls.choices else "")
            for k, v in cls.default_params().items()
        )
        source = ref.kind if ref.kind != "folder" else f"folder {Path(ref.location).parent}"
        table.add_row(name, source, cls.summary(), params)
    console.print(table)
    pools = Table(title="pool strategies", title_justify="left", header_style="bold")
    pools.add_column("name")
    pools.add_column("class")
    pools.add_column("description")
    for name, pool_cls in STRATEGIES.items():
        doc = (pool_cls.__doc__ or "").strip().splitlines()
        pools.add_row(name, f"poolbench.pools.{pool_cls.__name__}", doc[0].replace("``", "") if doc else "")
    found_plugins, problems = plugins()
    for name, factory in found_plugins.items():
        doc = (factory.__doc__ or "").strip().splitlines()
        pools.add_row(
            name,
            f"plugin {factory.__module__}.{factory.__qualname__}",
            doc[0].replace("``", "") if doc else "",
        )
    console.print(pools)
    for name, error in problems:
        warn(f"pool plugin {name} did not load: {error}")
    for problem in found.problems:
        warn(f"{problem.source} did not load: {problem.error}")
