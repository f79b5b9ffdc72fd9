"""Rendering ``poolbench list``: the scenarios found and the pool strategies."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from ..discovery import Discovery
from ..pools import ASYNC_STRATEGIES
from .format import size


def _default(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1024:
        return size(value, as_param=True)
    return str(value)


def scenario_table(found: Discovery) -> Table:
    table = Table(title="scenarios", title_justify="left", header_style="bold")
    for column in ("name", "kind", "source", "description", "parameters (defaults)"):
        table.add_column(column)
    for name, (ref, cls) in sorted(found.scenarios.items()):
        params = ", ".join(
            f"{k}={_default(v)}" + (f" ({'|'.join(map(str, cls.choices[k]))})" if k in cls.choices else "")
            for k, v in cls.default_params().items()
        )
        source = ref.kind if ref.kind != "folder" else f"folder {Path(ref.location).parent}"
        if ref.kind == "builtin" and not cls.by_default:
            source += " (runs when named)"
        kind = "async" if cls.is_async() else "threads"
        table.add_row(Text(name), Text(kind), Text(source), Text(cls.summary()), Text(params))
    return table


def pool_table(strategies: Mapping[str, type], plugins: Mapping[str, Any]) -> Table:
    pools = Table(title="pool strategies", title_justify="left", header_style="bold")
    pools.add_column("name")
    pools.add_column("class")
    pools.add_column("description")
    for name, pool_cls in strategies.items():
        doc = (pool_cls.__doc__ or "").strip().splitlines()
        pools.add_row(name, f"poolbench.pools.{pool_cls.__name__}", doc[0].replace("``", "") if doc else "")
        waits = ASYNC_STRATEGIES.get(name)
        if waits is not None:
            pools.add_row(
                "", f"poolbench.pools.{waits.__name__}", "in async scenarios: awaited, callers queue (FIFO)"
            )
    for name, factory in plugins.items():
        doc = (factory.__doc__ or "").strip().splitlines()
        pools.add_row(
            Text(name),
            Text(f"plugin {factory.__module__}.{factory.__qualname__}"),
            Text(doc[0].replace("``", "") if doc else ""),
        )
    return pools
