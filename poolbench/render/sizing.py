"""A size sweep (``poolbench size``) as a table per pool, JSON and Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..result import Result
from ..sizing import PoolSweep, SizeRow
from . import format as fmt


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _cells(r: SizeRow) -> dict[str, str]:
    return {
        "ops/s": fmt.rate(r.ops_per_sec),
        "wait p50": fmt.duration(r.wait_p50_ns),
        "wait p99": fmt.duration(r.wait_p99_ns),
        "wait max": fmt.duration(r.wait_max_ns),
        "timeouts": _count(r.timeouts),
        "peak\nin use": _count(r.peak_in_use),
        "created": _count(r.created),
        "held\n(mean)": fmt.duration(r.hold_ns),
        "in use\n(Little)": "-" if r.busy is None else f"{r.busy:.1f}",
    }


_COLUMNS = ("size", "ops/s", "wait p50", "wait p99", "wait max", "timeouts", "peak\nin use", "created",
            "held\n(mean)", "in use\n(Little)")  # fmt: skip
WIDE = 110
"""Terminal columns that fit every column of a sweep's table; narrower, the recommendation's
figures (throughput, p50 and p99 waits, objects in use) stay and the rest is left out."""
_NARROW_OUT = frozenset({"wait max", "timeouts", "created", "held\n(mean)"})


def print_sweeps(console: Console, result: Result, found: Sequence[PoolSweep], max_wait_ns: float) -> None:
    from .table import header

    console.print(header(result))
    shown = [c for c in _COLUMNS if console.width >= WIDE or c not in _NARROW_OUT]
    for sweep in found:
        table = Table(
            title=f"{escape(sweep.pool)}  [dim]{sweep.members_label}[/]",
            title_justify="left",
            header_style="bold",
            pad_edge=False,
        )
        for name in shown:
            table.add_column(name, justify="right", no_wrap=True)
        chosen = sweep.recommendation.size
        for r in sweep.rows:
            if r.status != "ok":
                # The reason goes under the table: in a cell it would squeeze every column.
                table.add_row(str(r.size), Text(r.status, style="red" if r.status == "failed" else "yellow"))
            else:
                cells = _cells(r)
                table.add_row(
                    str(r.size),
                    *(cells[c] for c in shown[1:]),
                    style="bold green" if r.size == chosen else "",
                )
        console.print(table)
        for r in sweep.rows:
            if r.status != "ok":
                style = "red" if r.status == "failed" else "yellow"
                console.print(f"  [{style}]{r.size}: {r.status}:[/] {escape(r.error or 'not measured yet')}",
                              highlight=False)  # fmt: skip
        rec = sweep.recommendation
        label = f"recommended size {rec.size}" if rec.size is not None else "no recommendation"
        console.print(
            f"[bold]{escape(sweep.pool)}:[/] {label} ({escape(rec.reason)}; --max-wait "
            f"{fmt.duration(max_wait_ns)})",
            highlight=False,
        )
        if rec.littles_law:
            console.print(f"  {escape(rec.littles_law)}", highlight=False)
        for note in rec.notes:
            console.print(f"  [yellow]note:[/] {escape(note)}", highlight=False)
    if len(shown) < len(_COLUMNS) and found:
        console.print(f"[dim]{console.width} columns: wait max, timeouts, created and held left out (a wider "
                      "terminal, or --format markdown, shows them)[/]")  # fmt: skip


def to_json(found: Sequence[PoolSweep], max_wait_ns: float) -> dict[str, Any]:
    """Per pool ``recommended`` and per size ``size, ops_per_sec, wait_p50_ns, wait_p99_ns,
    timeouts, peak_in_use, created`` (and what else the table shows)."""
    return {
        "max_wait_ns": max_wait_ns,
        "pools": [
            {
                "pool": s.pool,
                "threads": 0 if s.tasks else s.members,
                "concurrency": s.members if s.tasks else 0,
                "recommended": s.recommendation.size,
                "reason": s.recommendation.reason,
                "littles_law": s.recommendation.littles_law or None,
                "notes": list(s.recommendation.notes),
                "sizes": [
                    {
                        "size": r.size,
                        "status": r.status,
                        "error": r.error,
                        "ops_per_sec": r.ops_per_sec,
                        "wait_p50_ns": r.wait_p50_ns,
                        "wait_p99_ns": r.wait_p99_ns,
                        "wait_max_ns": r.wait_max_ns,
                        "timeouts": r.timeouts,
                        "peak_in_use": r.peak_in_use,
                        "created": r.created,
                        "hold_ns": r.hold_ns,
                        "in_use_littles_law": r.busy,
                    }
                    for r in s.rows
                ],
            }
            for s in found
        ],
    }


def to_markdown(found: Sequence[PoolSweep], max_wait_ns: float) -> str:
    lines = []
    for s in found:
        rec = s.recommendation
        lines += [
            f"### {s.pool}, {s.members_label}: "
            + (f"recommended size **{rec.size}**" if rec.size is not None else "no recommendation"),
            "",
            f"{rec.reason} (--max-wait {fmt.duration(max_wait_ns)})."
            + (f" {rec.littles_law}." if rec.littles_law else ""),
            "",
            "| " + " | ".join(c.replace("\n", " ") for c in _COLUMNS) + " |",
            "|" + "--:|" * len(_COLUMNS),
        ]
        for r in s.rows:
            if r.status == "ok":
                values = list(_cells(r).values())
            else:
                values = [f"{r.status}: {r.error or 'not measured yet'}"] + [""] * (len(_COLUMNS) - 2)
            size = f"**{r.size}**" if r.size == rec.size else str(r.size)
            lines.append("| " + " | ".join([size, *values]) + " |")
        lines += [*(f"\nnote: {n}" for n in rec.notes), ""]
    return "\n".join(lines) + "\n"
