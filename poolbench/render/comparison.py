"""Rendering a comparison: rich table, Markdown (CI job summary, PR comment) and JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..compare import Comparison, MetricChange
from . import format as fmt

_UNITS = {
    "time": "ns/op",
    "speedup": "x",
    "allocs": "allocs/op",
    "bytes": "B/op",
    "gc": "GC/1k ops",
    "instructions": "instr/op",
    "cycles": "est. cycles/op",
}


def value(metric: str, x: float | None) -> str:
    if x is None:
        return "-"
    if metric == "time":
        return fmt.duration(x)
    if metric == "speedup":
        return f"{x:.2f}x"
    if metric == "bytes":
        return fmt.size(x)
    return fmt.count(x, 2)


def change(m: MetricChange) -> str:
    if m.metric in ("time", "speedup"):
        if m.ratio is None:
            return "-"
        text = f"{m.ratio - 1:+.1%}"
        if m.ci_low is not None and m.ci_high is not None:
            text += f" [{m.ci_low - 1:+.0%}, {m.ci_high - 1:+.0%}]"
        return text
    if m.base is None or m.cand is None:
        return "-"
    return f"{m.cand - m.base:+.2f}" if m.metric != "bytes" else f"{m.cand - m.base:+,.0f} B"


def p_value(m: MetricChange) -> str:
    if m.p_value is None:
        return ""
    return f"p={m.p_value:.3f}" if m.p_value >= 0.001 else f"p={m.p_value:.0e}"


def detectable(m: MetricChange) -> str:
    """The smallest change this pair of runs could have flagged (blank for counted metrics)."""
    return "" if m.detectable is None else f"±{m.detectable:.0%}"


def verdict(m: MetricChange) -> str:
    return "REGRESSION" if m.regression else m.mark


def rows(comparison: Comparison) -> list[tuple[str, MetricChange]]:
    return [(cell.label, m) for cell in comparison.cells for m in cell.changes]


def comparison_table(comparison: Comparison) -> Group:
    table = Table(header_style="bold", pad_edge=False, title="base → candidate", title_justify="left")
    for name, justify in (
        ("cell", "left"), ("metric", "left"), ("base", "right"), ("candidate", "right"),
        ("change [95% CI]", "right"), ("p (Holm)", "right"), ("detectable", "right"), ("", "left"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous = None
    for label, m in rows(comparison):
        if previous is not None and label != previous:
            table.add_section()
        style = "bold red" if m.regression else "green" if m.mark in ("faster", "fewer") else ""
        table.add_row(
            Text(label if label != previous else ""),
            m.metric,
            value(m.metric, m.base),
            value(m.metric, m.cand),
            change(m),
            p_value(m),
            detectable(m),
            Text(verdict(m) + (f"  ({m.note})" if m.note else ""), style=style),
        )
        previous = label
    if comparison.geomean_time is not None:
        table.add_section()
        table.add_row("geomean", "time", "", "", f"{comparison.geomean_time - 1:+.1%}", "", "", "")
    parts: list[Any] = [table]
    parts.extend(Text(line, style="bold red") for line in broken(comparison))
    parts.extend(Text(line, style="yellow") for line in notes(comparison))
    parts.append(Text(summary(comparison), style="bold red" if comparison.failing else "bold green"))
    return Group(*parts)


def broken(comparison: Comparison) -> list[str]:
    lines = [f"REGRESSION {cell.label}: {why}" for cell, why in comparison.broken]
    return ([f"FAILED: {comparison.incomplete}"] if comparison.incomplete else []) + lines


def notes(comparison: Comparison) -> list[str]:
    lines = []
    for cell in comparison.only_base:
        lines.append(f"only in base: {cell.label}")
    for cell in comparison.only_cand:
        lines.append(f"only in candidate: {cell.label}")
    for cell, why in comparison.failed:
        lines.append(f"not compared: {cell.label}: {why}")
    return lines


def summary(comparison: Comparison) -> str:
    n = len(comparison.regressions)
    thresholds = ", ".join(f"{k}={v}" for k, v in comparison.thresholds.items())
    tail = (
        f"in {len(comparison.cells)} compared cells (thresholds: {thresholds}; "
        f"p-values Holm-adjusted over {comparison.tests} tests)"
    )
    lost = len(comparison.broken)
    lost_text = f"{lost} cell(s) failed or missing in the candidate" if lost else ""
    first = "the candidate is incomplete; " if comparison.incomplete else ""
    if n:
        return first + f"{n} regression(s) {tail}" + (f"; {lost_text}" if lost else "")
    if lost:
        return first + f"{lost_text}; no measured regression {tail}"
    return first + f"no {'measured ' if first else ''}regression {tail}"


def to_markdown(comparison: Comparison) -> str:
    icon = ":x:" if comparison.failing else ":white_check_mark:"
    lines = [f"### poolbench compare {icon}", "", summary(comparison), ""]
    lines.extend(f"> warning: {w}" for w in environment_warnings(comparison))
    lines += [
        "| cell | metric | base | candidate | change [95% CI] | p (Holm) | detectable | |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for label, m in rows(comparison):
        mark = (f"**{verdict(m)}**" if m.regression else verdict(m)) + (f" ({m.note})" if m.note else "")
        lines.append(
            f"| {label} | {m.metric} | {value(m.metric, m.base)} | {value(m.metric, m.cand)} | {change(m)} "
            f"| {p_value(m)} | {detectable(m)} | {mark} |"
        )
    if comparison.geomean_time is not None:
        lines.append(f"| geomean | time | | | {comparison.geomean_time - 1:+.1%} | | | |")
    extra = [f"**{line}**" for line in broken(comparison)] + notes(comparison)
    if extra:
        lines += ["", *(f"- {line}" for line in extra)]
    return "\n".join(lines) + "\n"


def environment_warnings(comparison: Comparison) -> list[str]:
    out = [f"different {key}: {b} vs {c}" for key, b, c in comparison.env_differences]
    return out + comparison.warnings


def to_json(comparison: Comparison) -> str:
    cells = []
    for cell in comparison.cells:
        cells.append(
            {
                "scenario": cell.base.scenario,
                "pool": cell.base.pool,
                "threads": cell.base.threads,
                "params": cell.base.params,
                "regression": cell.regression,
                "metrics": [
                    {k: v for k, v in m.__dict__.items()} | {"unit": _UNITS[m.metric]} for m in cell.changes
                ],
            }
        )
    data = {
        "failing": comparison.failing,
        "regressions": len(comparison.regressions),
        "tests": comparison.tests,
        "broken": [{"cell": c.label, "why": why} for c, why in comparison.broken],
        "incomplete": comparison.incomplete or None,
        "thresholds": {k: str(v) for k, v in comparison.thresholds.items()},
        "geomean_time_ratio": comparison.geomean_time,
        "cells": cells,
        "only_base": [c.label for c in comparison.only_base],
        "only_candidate": [c.label for c in comparison.only_cand],
        "not_compared": [{"cell": c.label, "why": why} for c, why in comparison.failed],
        "warnings": environment_warnings(comparison),
    }
    return json.dumps(data, indent=1) + "\n"
