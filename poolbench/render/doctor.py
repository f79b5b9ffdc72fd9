"""Rendering ``poolbench doctor``'s findings: a rich table, or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..diagnosis import Diagnosis


def to_json(results: Sequence[Diagnosis]) -> str:
    """``{"findings": [...], "checked": N}``: each finding with ``kind``, ``site``, ``count``,
    ``scenario`` and ``pool``; a run that failed is a finding of kind ``error``."""
    data = [{"scenario": d.scenario, "pool": d.pool, **f.to_json()} for d in results for f in d.findings]
    data += [
        {"scenario": d.scenario, "pool": d.pool, "kind": "error", "detail": d.error}
        for d in results
        if d.error
    ]
    skipped = [{"scenario": d.scenario, "pool": d.pool, "why": d.skipped} for d in results if d.skipped]
    checked = sum(1 for d in results if not d.skipped)
    return json.dumps({"findings": data, "checked": checked, "skipped": skipped}, indent=1)


def doctor_report(results: Sequence[Diagnosis]) -> Group:
    findings = [(d, f) for d in results for f in d.findings]
    errors = [d for d in results if d.error]
    parts: list[Table | Text] = []
    if findings or errors:
        table = Table(header_style="bold", title="poolbench doctor", title_justify="left")
        for column in ("scenario", "pool", "finding", "count", "call site", "fix"):
            table.add_column(column, overflow="fold")
        for d, f in findings:
            table.add_row(
                Text(d.scenario),
                Text(d.pool),
                Text(f.kind, style="bold red"),
                str(f.count),
                Text(f.site + (f"\n{f.detail}" if f.detail else "")),
                Text(f.hint),
            )
        for d in errors:
            table.add_row(
                Text(d.scenario), Text(d.pool), Text("error", style="bold red"), "", Text(d.error or ""),
                "fix the scenario",
            )  # fmt: skip
        parts.append(table)
    skipped = [d for d in results if d.skipped]
    pools_of: dict[str, list[str]] = {}
    for d in skipped:
        pools_of.setdefault(f"{d.scenario}: {d.skipped}", []).append(d.pool)
    for reason, pools in pools_of.items():
        parts.append(Text(f"skipped {reason} (pool {', '.join(pools)})", style="yellow"))
    summary = Text(f"{len(results) - len(skipped)} scenario/pool run(s) checked: ")
    if findings:
        summary.append(f"{len(findings)} finding(s)", style="bold red")
    elif errors:
        summary.append(f"{len(errors)} run(s) failed", style="bold red")
    elif len(skipped) == len(results):
        summary.append("nothing could run here (skipped above)", style="yellow")
    else:
        summary.append("no misuse found", style="green")
    parts.append(summary)
    return Group(*parts)
