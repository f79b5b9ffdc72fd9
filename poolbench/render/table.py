"""The rich table of a result, grouped by scenario."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..params import format_params
from ..report import CellReport
from ..result import Result
from . import format as fmt

_VERDICT_STYLE = {
    "wins": "bold green",
    "loses": "bold red",
    "same": "yellow",
    "inconclusive": "dim",
    "unstable": "bold magenta",
}


WIDE = 170
"""Terminal columns that fit every column of a table."""
NARROW = 110
"""Below this, only what a verdict rests on: threads, pool, time, allocations, speedup, verdict."""
_DETAIL = frozenset({"ops/s", "p99", "GC pause\nper op", "peak RSS\n(+pass)", "hits"})
_NARROW_OUT = _DETAIL | {"B/op", "GC/1k ops\ngen0/1/2"}


def result_tables(result: Result, reports: Sequence[CellReport], width: int = WIDE) -> Group:
    """One table per scenario and parameter set; rows are threads × pools. Narrower than
    :data:`WIDE` terminal columns, the tables leave out the columns a verdict does not rest on
    (rich would otherwise squeeze thread and pool to nothing), and say so."""
    tables: list[Table | Text] = []
    for (scenario, params), grouped in groupby(
        reports, key=lambda r: (r.cell.scenario, format_params(r.cell.params))
    ):
        rows = list(grouped)
        reasons = {r.cell.error for r in rows if r.cell.status == "skipped"}
        if len(reasons) == 1 and all(r.cell.status == "skipped" for r in rows):
            # A scenario this machine cannot run (no server, say): one line, not a table of it.
            tables.append(
                Text(f"{scenario}  {params}: {len(rows)} cells skipped: {reasons.pop()}", style="yellow")
            )
            continue
        tables.append(
            scenario_table(
                f"{escape(scenario)}  [dim]{escape(params)}[/]",
                rows,
                pythons=len(result.pythons) > 1,
                width=width,
            )
        )
        if width < NARROW and any(r.instructions for r in rows):
            # The column has no room here, but the user asked for the counts: a line of them.
            tables.append(Text("instr/op: " + counted_line(rows)))
    if width < WIDE:
        tables.append(Text(f"{width} columns: some columns left out (a wider terminal, or --format markdown, shows them)",
                           style="dim"))  # fmt: skip
    return Group(*tables)


def counted_line(rows: Sequence[CellReport]) -> str:
    """The counted cells' instructions per op in a line (``none 139k, sync 72.3k (-48%)``)."""
    unpooled = {(r.python, r.cell.members): r.instructions for r in rows if r.cell.pool == "none"}
    return ", ".join(
        f"{r.cell.pool} {fmt.instructions(r.instructions, unpooled.get((r.python, r.cell.members)), r.instructions_spread)}"
        for r in rows
        if r.instructions
    )


def scenario_table(title: str, rows: list[CellReport], *, pythons: bool = False, width: int = WIDE) -> Table:
    """Rows are threads (an async scenario's: tasks) × pools, in sections by thread count; with ``pythons`` (a run under several
    interpreters) a first column names each row group's interpreter."""
    left_out = frozenset() if width >= WIDE else _DETAIL if width >= NARROW else _NARROW_OUT
    table = Table(title=title, title_justify="left", header_style="bold", pad_edge=False)
    # Pool waits are a detail too: beside them an 80-column table had no room left for the verdict.
    waits = width >= WIDE and any(r.waits for r in rows)
    if pythons:
        table.add_column("python", no_wrap=True)
    members = "tasks" if any(r.cell.concurrency for r in rows) else "thr"
    for name, justify in (
        (members, "right"), ("pool", "left"), ("time/op", "right"), ("ops/s", "right"), ("p99", "right"),
        ("allocs/op", "right"), ("B/op", "right"), ("GC/1k ops\ngen0/1/2", "right"),
        ("GC pause\nper op", "right"), ("peak RSS\n(+pass)", "right"), ("hits", "right"),
        ("speedup\n[95% CI]", "right"), ("verdict", "left"),
    ):  # fmt: skip
        if name not in left_out:
            table.add_column(
                name,
                justify=justify,  # type: ignore[arg-type]
                no_wrap=name != "verdict",
                min_width=len(members) if name == members else None,
            )
    if waits:
        table.add_column("pool waits\nn / time / timeouts", justify="right", no_wrap=True)
    # What the scenario counts itself (connections opened per 1,000 requests) is its own figure:
    # kept at every width a verdict fits in.
    events = sorted({name for r in rows for name in r.per_1000_ops}) if width >= NARROW else []
    for name in events:
        table.add_column(f"{escape(name)}\n/1k ops", justify="right", no_wrap=True)
    # Counted under Valgrind (run --instructions): a pooled row shows its change against none's.
    counted = width >= NARROW and any(r.instructions for r in rows)
    unpooled = {(r.python, r.cell.members): r.instructions for r in rows if r.cell.pool == "none"}
    if counted:
        table.add_column("instr/op\n(vs none)", justify="right", no_wrap=True)
    # The simulated caches' side of it: beside the other details, at full width.
    cycles = counted and width >= WIDE
    if cycles:
        table.add_column("est. cycles/op\nLL miss/op", justify="right", no_wrap=True)
    previous: tuple[str, int] | None = None
    for r in rows:
        c = r.cell
        first = [] if not pythons else [Text(r.python if previous is None or previous[0] != r.python else "")]
        if previous is not None and (r.python, c.members) != previous:
            table.add_section()
        previous = (r.python, c.members)
        if c.status != "ok":
            style = "red" if c.status == "failed" else "yellow"
            error = c.error or "not measured yet (poolbench run --resume)"
            table.add_row(*first, str(c.members), Text(c.pool), Text(f"{c.status}: {error}", style=style))
            continue
        verdict = r.verdict
        shown = {
            "time/op": fmt.time_ci(r),
            "ops/s": fmt.rate(r.ops_per_sec),
            "p99": fmt.duration(r.p99_ns),
            "allocs/op": fmt.count(r.allocs_per_op),
            "B/op": fmt.size(r.bytes_per_op),
            "GC/1k ops\ngen0/1/2": fmt.gc_rates(r),
            "GC pause\nper op": fmt.pause_per_op(r),
            "peak RSS\n(+pass)": fmt.memory(r),
            "hits": fmt.percent(c.hit_rate),
            "speedup\n[95% CI]": fmt.speedup(r),
        }
        table.add_row(
            *first,
            str(c.members),
            Text(c.pool),
            *(value for name, value in shown.items() if name not in left_out),
            Text(fmt.verdict(r), style=_VERDICT_STYLE[verdict]) if verdict else Text(""),
            *([fmt.waits(r)] if waits else []),
            *(fmt.count(r.per_1000_ops.get(name)) for name in events),
            *(
                [fmt.instructions(r.instructions, unpooled.get((r.python, c.members)), r.instructions_spread)]
                if counted
                else []
            ),
            *([fmt.cycles(r.instructions)] if cycles else []),
        )
    return table


def header(result: Result) -> str:
    """The line above a result's tables (``run`` and ``show``): the interpreter and machine, the mode."""
    return (
        f"[dim]{escape(fmt.where(result.metadata))} · mode {escape(str(result.config.get('mode', '?')))}[/]"
    )


def print_result(console: Console, result: Result, reports: Sequence[CellReport]) -> None:
    """A result as ``run`` and ``show`` print it: its :func:`header`, then its tables."""
    console.print(header(result))
    console.print(result_tables(result, reports, console.width))
