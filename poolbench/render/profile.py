"""Rendering ``poolbench profile``: a rich table, Markdown, JSON, and a bar chart of the top sites."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..errors import UsageError
from ..profile import Profile, Site
from .format import size


def _short_site(site: Site) -> str:
    """``file.py:LINE`` relative to the working directory when inside it."""
    filename, sep, line = site.site.rpartition(":")
    if not sep:
        return site.site
    try:
        shown = os.path.relpath(filename)
    except ValueError:
        shown = filename
    if shown.startswith(".."):
        shown = filename
    return f"{shown}:{line}"


def to_json(result: Profile, top: int) -> str:
    """``{"target", "ended", "estimate", "sites": [...]}``, best candidate first; each site has
    ``site``, ``function``, ``allocations``, ``bytes``, ``short_lived_share``, ``typical_size``,
    ``candidate`` and ``why``."""
    return json.dumps(result.to_json(top), indent=1)


def _estimate_line(result: Profile) -> str:
    e = result.estimate
    if not e.sites:
        return (
            "No candidate: nothing here is frequent, short-lived, uniform in size and large enough to pool."
        )
    return (
        f"Estimate, pooling the {e.sites} candidate site(s): about {e.allocations:,} allocations and "
        f"{size(e.bytes)} fewer per run; at most {e.collections:,} of {result.gc_collections[0]:,} "
        "gen-0 collections avoided. Measure it: poolbench profile ... --scaffold NAME, then poolbench run NAME."
    )


def profile_report(result: Profile, top: int) -> Group:
    table = Table(
        header_style="bold",
        title=f"poolbench profile: {result.target}",
        title_justify="left",
        caption=(
            f"{result.allocations:,} allocations, {size(result.bytes)} in {result.seconds:.1f} s; the program "
            f"{result.ended}. Short-lived: freed within {result.short} visits of its line."
        ),
        caption_justify="left",
    )
    for column, justify in (
        ("site", "left"), ("function", "left"), ("allocs", "right"), ("bytes", "right"),
        ("short-lived", "right"), ("per visit", "right"), ("alive at end", "right"), ("candidate", "left"),
    ):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for site in result.sites[:top]:
        verdict = Text("yes", style="bold green") if site.candidate else Text("no", style="dim")
        verdict.append(f"\n{site.why}", style="" if site.candidate else "dim")
        table.add_row(
            Text(_short_site(site)),
            Text(site.function),
            f"{site.allocations:,}",
            size(site.bytes),
            f"{site.short_lived_share:.0%}",
            size(site.typical_size),
            f"{site.alive_at_end:,}",
            verdict,
        )
    return Group(table, Text(_estimate_line(result)))


def to_markdown(result: Profile, top: int) -> str:
    lines = [
        f"### poolbench profile: `{result.target}`",
        "",
        f"{result.allocations:,} allocations, {size(result.bytes)}; the program {result.ended}.",
        "",
        "| site | function | allocs | bytes | short-lived | per visit | alive at end | candidate | why |",
        "|---|---|--:|--:|--:|--:|--:|---|---|",
    ]
    for s in result.sites[:top]:
        lines.append(
            f"| `{_short_site(s)}` | {s.function} | {s.allocations:,} | {size(s.bytes)} | {s.short_lived_share:.0%} "
            f"| {size(s.typical_size)} | {s.alive_at_end:,} | {'**yes**' if s.candidate else 'no'} | {s.why} |"
        )
    lines += ["", _estimate_line(result)]
    return "\n".join(lines)


def plot(result: Profile, path: Path, top: int) -> None:
    """Two bar charts side by side: allocations and bytes of the top sites, candidates coloured."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf"):
        raise UsageError(f"--plot writes .png, .svg or .pdf files, not {path.name!r}")
    from .plots import _pyplot, save

    plt = _pyplot()
    sites = result.sites[:top][::-1]
    labels = [f"{_short_site(s)} {s.function}".strip() for s in sites]
    colours = ["#009E73" if s.candidate else "#999999" for s in sites]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.45 * len(sites) + 1.6), sharey=True)
    left.barh(labels, [s.allocations for s in sites], color=colours)
    left.set_xlabel("allocations")
    right.barh(labels, [s.bytes / 2**20 for s in sites], color=colours)
    right.set_xlabel("MiB allocated")
    fig.suptitle(f"allocation sites of {result.target} (green: pooling candidate)", fontsize=10)
    fig.tight_layout()
    save(fig, path.with_suffix(""), [suffix])  # an unwritable folder is one clear line
