"""Figures that answer "should I pool this?" (matplotlib, Agg, imported only when plotting).

Each ``*_figure`` function returns a Figure, or ``None`` when the result lacks what that figure
needs (one thread count: no throughput-vs-threads plot). Importing matplotlib costs ~0.8 s, so
this module imports it inside :func:`_pyplot`, never at the top: workers and other commands do
not pay for it.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..compare import Comparison
from ..errors import ResultFileError
from ..params import format_params
from ..report import CellReport, report
from ..result import Cell, Result
from ..storage import make_folder
from .format import size, where

# Okabe-Ito: distinguishable with every common form of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
VERDICT_COLOURS = {
    "wins": "#009E73",
    "loses": "#D55E00",
    "same": "#999999",
    "inconclusive": "#E69F00",
    "unstable": "#CC79A7",
}
VERDICT_LABELS = {
    "wins": "pooling wins",
    "loses": "pooling loses",
    "same": "no difference",
    "inconclusive": "inconclusive",
    "unstable": "unstable (processes split)",
}
DPI = 150


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pool_colours(reports: Sequence[CellReport]) -> dict[str, str]:
    pools = list(dict.fromkeys(r.cell.pool for r in reports))
    return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(pools)}


def _ok(reports: Sequence[CellReport]) -> list[CellReport]:
    return [r for r in reports if r.cell.status == "ok" and r.time is not None]


def _group_label(cell: Cell, skip: Sequence[str] = ()) -> str:
    shown = {
        k: (size(v, as_param=True) if k == "size" and isinstance(v, int) else v)
        for k, v in cell.params.items()
        if k not in skip
    }
    params = format_params(shown)
    return f"{cell.scenario} [{params}]" if params else cell.scenario


def _row_label(r: CellReport) -> str:
    python = f" · {r.cell.python}" if r.cell.python else ""
    members = f"{r.cell.concurrency} tasks" if r.cell.concurrency else f"{r.cell.threads} thr"
    return f"{_group_label(r.cell)} · {r.cell.pool} · {members}{python}"


LINE_STYLES = ["-", "--", ":", "-."]
"""One per interpreter of a run under several; the pool keeps its colour."""


def throughput_figure(result: Result, reports: Sequence[CellReport]) -> Any | None:
    """Operations per second vs threads (an async scenario's: vs concurrency, tasks on one loop),
    one line per pool (and per interpreter, dashed for the second, of a run under several: GIL
    and free-threaded side by side), 95% CI as error bars."""
    groups: dict[str, list[CellReport]] = defaultdict(list)
    for r in _ok(reports):
        groups[_group_label(r.cell)].append(r)
    groups = {k: v for k, v in groups.items() if len({r.cell.members for r in v}) > 1}
    if not groups:
        return None
    plt = _pyplot()
    from matplotlib.ticker import EngFormatter

    colours = _pool_colours(reports)
    styles = {p: LINE_STYLES[i % len(LINE_STYLES)] for i, p in enumerate(result.pythons)}
    several = len(styles) > 1
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (label, rs) in zip(axes.flat, groups.items(), strict=False):
        for pool, python in dict.fromkeys((r.cell.pool, r.python) for r in rs):
            pts = sorted((r.cell.members, r) for r in rs if r.cell.pool == pool and r.python == python)
            xs = [t for t, _ in pts]
            ys = [1e9 / r.time.median for _, r in pts if r.time]
            lo = [y - 1e9 / r.time.ci_high for y, (_, r) in zip(ys, pts, strict=True) if r.time]
            hi = [1e9 / r.time.ci_low - y for y, (_, r) in zip(ys, pts, strict=True) if r.time]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, color=colours[pool],
                        ls=styles.get(python, "-"), label=f"{pool} · {python}" if several else pool)  # fmt: skip
        ax.set_title(label, fontsize=10)
        tasks = any(r.cell.concurrency for r in rs)
        ax.set_xlabel("tasks on one event loop sharing one pool" if tasks else "threads sharing one pool")
        if tasks:
            ax.set_xscale("log", base=2)
        ax.set_ylabel("throughput (operations / s)")
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xticks(sorted({r.cell.members for r in rs}))
        ax.set_xticklabels([str(m) for m in sorted({r.cell.members for r in rs})])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(title="pool · python" if several else "pool", fontsize=8)
    for ax in list(axes.flat)[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle(f"Throughput vs threads or tasks, pooled vs unpooled\n{where(result.metadata)}", fontsize=11)
    fig.tight_layout()
    return fig


def speedup_figure(result: Result, reports: Sequence[CellReport]) -> Any | None:
    """Speedup vs ``none`` per pooled cell: horizontal bars, CI whiskers, coloured by verdict."""
    rows = [r for r in _ok(reports) if r.speedup is not None]
    if not rows:
        return None
    plt = _pyplot()
    from matplotlib.patches import Patch

    height = max(2.5, 0.32 * len(rows) + 1.5)
    fig, ax = plt.subplots(figsize=(9, height))
    labels = [_row_label(r) for r in rows]
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows, strict=True):
        s = r.speedup
        assert s is not None
        ax.barh(y, s.ratio - 1, left=1, color=VERDICT_COLOURS[s.verdict], height=0.6)
        ax.errorbar(
            s.ratio, y, xerr=[[s.ratio - s.ci_low], [s.ci_high - s.ratio]], color="black", capsize=3, lw=1
        )
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("speedup vs no pool (none time / pool time; > 1: pooling is faster)")
    ax.grid(axis="x", alpha=0.3)
    present = dict.fromkeys(r.speedup.verdict for r in rows if r.speedup)
    ax.legend(
        handles=[Patch(color=VERDICT_COLOURS[v], label=VERDICT_LABELS[v]) for v in present],
        fontsize=8,
        loc="best",
    )
    ax.set_title(
        f"Speedup of each pool over allocating fresh, with 95% CI\n{where(result.metadata)}", fontsize=11
    )
    fig.tight_layout()
    return fig


def gc_figure(result: Result, reports: Sequence[CellReport]) -> Any | None:
    """Collections per 1k ops by generation (stacked), and GC pause, for every cell."""
    rows = [r for r in _ok(reports) if r.gc_per_kop is not None]
    if not rows or not any(sum(r.gc_per_kop or ()) > 0 for r in rows):
        return None
    plt = _pyplot()
    height = max(3, 0.3 * len(rows) + 1.6)
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(11, height), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    ys = list(range(len(rows)))[::-1]
    left = [0.0] * len(rows)
    for gen in range(3):
        widths = [r.gc_per_kop[gen] if r.gc_per_kop else 0.0 for r in rows]
        ax.barh(ys, widths, left=left, color=PALETTE[gen], height=0.6, label=f"generation {gen}")
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(ys)
    ax.set_yticklabels([_row_label(r) for r in rows], fontsize=8)
    ax.set_xlabel("collections per 1,000 operations")
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax2.barh(ys, [r.gc_pause_ns_per_op or 0 for r in rows], color=PALETTE[3], height=0.6)
    ax2.set_xlabel("GC pause per operation (ns)")
    ax2.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Garbage collection, pooled vs unpooled\n{where(result.metadata)}", fontsize=11)
    fig.tight_layout()
    return fig


def latency_figure(result: Result, reports: Sequence[CellReport]) -> Any | None:
    """p50 and p99 latency per operation for every cell (log scale)."""
    rows = [r for r in _ok(reports) if r.p50_ns is not None and r.p99_ns is not None]
    if not rows:
        return None
    plt = _pyplot()
    colours = _pool_colours(reports)
    height = max(2.5, 0.3 * len(rows) + 1.5)
    fig, ax = plt.subplots(figsize=(9, height))
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows, strict=True):
        ax.plot([r.p50_ns, r.p99_ns], [y, y], color=colours[r.cell.pool], lw=2)
        ax.plot(r.p50_ns, y, "o", color=colours[r.cell.pool])
        ax.plot(r.p99_ns, y, "|", color=colours[r.cell.pool], markersize=12, mew=2)
    ax.set_xscale("log")
    ax.set_yticks(ys)
    ax.set_yticklabels([_row_label(r) for r in rows], fontsize=8)
    ax.set_xlabel("latency per operation (ns, log scale): dot = p50, bar = p99")
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.set_title(f"Latency per operation, p50 to p99\n{where(result.metadata)}", fontsize=11)
    fig.tight_layout()
    return fig


def _numeric(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sweeps(reports: Sequence[CellReport]) -> list[tuple[str, str, list[CellReport]]]:
    """(title, swept key, cells) for every parameter with 3+ numeric values, other things equal."""
    found = []
    ok = _ok(reports)
    keys = {k for r in ok for k, v in r.cell.params.items() if _numeric(v)}
    for key in sorted(keys):
        groups: dict[tuple[Any, ...], list[CellReport]] = defaultdict(list)
        for r in ok:
            if key in r.cell.params:
                rest = tuple(sorted((k, str(v)) for k, v in r.cell.params.items() if k != key))
                groups[(r.cell.scenario, r.cell.threads, r.cell.concurrency, rest, r.cell.python)].append(r)
        for (_scenario, threads, concurrency, _rest, python), rs in groups.items():
            if len({r.cell.params[key] for r in rs}) >= 3:
                members = f"{concurrency} tasks" if concurrency else f"{threads} thr"
                title = f"{_group_label(rs[0].cell, skip=[key])} · {members}" + (
                    f" · {python}" if python else ""
                )
                found.append((title, key, rs))
    return found


def break_even(points: Sequence[tuple[float, float]]) -> float | None:
    """Where speedup crosses 1 going up (pooling starts to pay), interpolated on log x."""
    for (x0, s0), (x1, s1) in itertools.pairwise(points):
        if s0 < 1 <= s1 and x0 > 0 and x1 > 0:
            t = (1 - s0) / (s1 - s0)
            return math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0)))
    return None


def _fmt_param(key: str, value: float) -> str:
    if key in ("size", "bytes") or key.endswith("_size"):
        return size(value)
    return f"{value:.3g}"


def sweep_label(key: str, points: Sequence[tuple[float, float]]) -> str:
    """The sentence the figure's answer is: where pooling starts to pay, if anywhere."""
    crossing = break_even(points)
    if crossing is not None:
        return f"pooling pays above {key}={_fmt_param(key, crossing)}"
    if all(s >= 1 for _, s in points):
        return f"pooling pays at every {key} measured"
    if all(s < 1 for _, s in points):
        return f"pooling never pays in the {key} range measured"
    return f"pooling stops paying as {key} grows"


def sweep_figure(result: Result, reports: Sequence[CellReport]) -> Any | None:
    """ns/op vs the swept parameter (log axes), one line per pool, break-even marked."""
    found = sweeps(reports)
    if not found:
        return None
    plt = _pyplot()
    colours = _pool_colours(reports)
    fig, axes = plt.subplots(len(found), 1, figsize=(8, 4.2 * len(found)), squeeze=False)
    for ax, (title, key, rs) in zip(axes.flat, found, strict=True):
        headline = ""
        for pool in dict.fromkeys(r.cell.pool for r in rs):
            pts = sorted((float(r.cell.params[key]), r) for r in rs if r.cell.pool == pool)
            xs = [x for x, _ in pts]
            ys = [r.time.median for _, r in pts if r.time]
            ax.plot(xs, ys, marker="o", color=colours[pool], label=pool)
            ax.fill_between(xs, [r.time.ci_low for _, r in pts if r.time], [r.time.ci_high for _, r in pts if r.time],
                            color=colours[pool], alpha=0.15)  # fmt: skip
            speedups = [(x, r.speedup.ratio) for x, r in pts if r.speedup]
            if speedups and not headline:
                headline = sweep_label(key, speedups)
                crossing = break_even(speedups)
                if crossing is not None:
                    ax.axvline(crossing, color="black", ls="--", lw=1)
                    ax.annotate(headline, (crossing, 0.95), xycoords=("data", "axes fraction"), ha="left",
                                va="top", fontsize=9, xytext=(4, 0), textcoords="offset points")  # fmt: skip
        ax.set_xscale("log", base=2 if key in ("size", "bytes") else 10)
        ax.set_yscale("log")
        if key in ("size", "bytes"):
            ticks = sorted({float(r.cell.params[key]) for r in rs})
            ax.set_xticks(ticks)
            ax.set_xticklabels([_fmt_param(key, t) for t in ticks])
        ax.set_xlabel(f"{key} (log scale)")
        ax.set_ylabel("time per operation (ns, log scale)")
        ax.set_title(f"{title}: {headline}" if headline else title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(title="pool", fontsize=8)
    fig.suptitle(
        f"Parameter sweep: does pooling pay as {found[0][1]} grows?\n{where(result.metadata)}", fontsize=11
    )
    fig.tight_layout()
    return fig


def comparison_figure(comparison: Comparison) -> Any | None:
    """Time change per cell with its 95% CI; regressions in red."""
    rows = [(c.label, m) for c in comparison.cells for m in c.changes if m.metric == "time" and m.ratio]
    if not rows:
        return None
    plt = _pyplot()
    height = max(2.5, 0.32 * len(rows) + 1.5)
    fig, ax = plt.subplots(figsize=(9, height))
    ys = list(range(len(rows)))[::-1]
    from matplotlib.patches import Patch

    colours = {"regression": "#D55E00", "slower": "#E69F00", "faster": "#0072B2", "~": "#999999"}
    seen: dict[str, None] = {}
    for y, (_, m) in zip(ys, rows, strict=True):
        kind = "regression" if m.regression else m.mark if m.mark in colours else "~"
        seen[kind] = None
        colour = colours[kind]
        change = (m.ratio or 1) - 1
        ax.barh(y, 100 * change, color=colour, height=0.6)
        if m.ci_low is not None and m.ci_high is not None:
            ax.errorbar(100 * change, y, xerr=[[100 * (m.ratio - m.ci_low)], [100 * (m.ci_high - m.ratio)]],  # type: ignore[operator]
                        color="black", capsize=3, lw=1)  # fmt: skip
    threshold = comparison.thresholds.get("time")
    if threshold is not None:
        ax.axvline(100 * threshold.value, color="#D55E00", ls="--", lw=1, label=f"threshold +{threshold}")
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(ys)
    ax.set_yticklabels([label for label, _ in rows], fontsize=8)
    ax.set_xlabel("time change, candidate vs base (%, normalized; > 0: slower)")
    ax.grid(axis="x", alpha=0.3)
    words = {
        "regression": "regression",
        "slower": "slower, within threshold",
        "faster": "faster",
        "~": "no significant change",
    }
    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=colours[k], label=words[k]) for k in seen]
    ax.legend(handles=handles, fontsize=8, loc="best")
    n = len(comparison.regressions)
    ax.set_title(f"Change per cell with 95% CI: {n} regression(s)", fontsize=11)
    fig.tight_layout()
    return fig


def size_figure(result: Result, reports: Sequence[CellReport]) -> Any | None:
    """A size sweep: throughput and p99 acquire wait vs pool size, a line per pool; the
    recommended size ringed, the wait target dashed."""
    from ..sizing import max_wait_of
    from ..sizing import sweeps as size_sweeps

    max_wait_ns = max_wait_of(result)
    found = [s for s in size_sweeps(result, max_wait_ns) if any(r.ops_per_sec for r in s.rows)]
    if not found:
        return None
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True)
    several = len({s.members for s in found}) > 1
    for i, sweep in enumerate(found):
        colour = PALETTE[i % len(PALETTE)]
        label = f"{sweep.pool} ({sweep.members})" if several else sweep.pool
        rows = [r for r in sweep.rows if r.ops_per_sec is not None]
        xs = [r.size for r in rows]
        top.plot(xs, [r.ops_per_sec for r in rows], marker="o", color=colour, label=label)
        waited = [r for r in rows if r.wait_p99_ns is not None]
        # A p99 of no wait at all sits at the axis floor (a log axis has no zero).
        bottom.plot([r.size for r in waited], [max(r.wait_p99_ns or 0.0, 1e3) / 1e6 for r in waited],
                    marker="o", color=colour, label=label)  # fmt: skip
        chosen = next((r for r in rows if r.size == sweep.recommendation.size), None)
        if chosen is not None:
            top.plot([chosen.size], [chosen.ops_per_sec], marker="o", markersize=14, mfc="none", color=colour)
            top.annotate(f"{sweep.pool}: {chosen.size}", (chosen.size, chosen.ops_per_sec or 0.0), fontsize=8,
                         xytext=(6, -12), textcoords="offset points", color=colour)  # fmt: skip
    bottom.axhline(
        max_wait_ns / 1e6, color="#D55E00", ls="--", lw=1, label=f"--max-wait {max_wait_ns / 1e6:g} ms"
    )
    top.set_xscale("log", base=2)
    ticks = sorted({r.size for sweep in found for r in sweep.rows})
    bottom.set_xticks(ticks)
    bottom.set_xticklabels([str(t) for t in ticks])
    top.set_ylabel("operations per second (all members)")
    top.set_ylim(bottom=0)
    bottom.set_yscale("log")
    bottom.set_ylabel("p99 acquire wait (ms, log scale)")
    bottom.set_xlabel("pool size (max_size, log scale)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3, which="both")
        ax.legend(title="pool", fontsize=8)
    members = "tasks" if any(c.concurrency for c in result.cells) else "threads"
    scenario = result.cells[0].scenario if result.cells else ""
    shared = ", ".join(sorted({str(s.members) for s in found}))
    fig.suptitle(f"How big should the pool be? {scenario}, {shared} {members}\n{where(result.metadata)}",
                 fontsize=11)  # fmt: skip
    fig.tight_layout()
    return fig


FIGURES = {
    "throughput": throughput_figure,
    "speedup": speedup_figure,
    "gc": gc_figure,
    "latency": latency_figure,
    "sweep": sweep_figure,
}


def save(fig: Any, stem: Path, formats: Sequence[str]) -> list[Path]:
    """``<stem>.<format>`` for each format. The suffix is appended, never substituted: a run
    labelled ``v1.2`` must not send every figure to ``...-v1.png``."""
    folder = stem.parent
    try:
        make_folder(folder)
        paths = []
        for fmt in formats:
            path = folder / f"{stem.name}.{fmt}"
            fig.savefig(path, dpi=DPI if fmt == "png" else None, bbox_inches="tight")
            paths.append(path)
    except OSError as exc:
        raise ResultFileError(f"cannot write figures to {folder}: {exc.strerror or exc}") from None
    finally:
        _pyplot().close(fig)
    return paths


def plot_result(result: Result, out_dir: Path, prefix: str, formats: Sequence[str]) -> list[Path]:
    """Every figure the result has the data for, saved as ``<prefix>-<figure>.<format>``."""
    from ..sizing import is_size_result

    reports = report(result)
    written = []
    figures = {"size": size_figure} if is_size_result(result) else FIGURES
    for name, make in figures.items():
        fig = make(result, reports)
        if fig is not None:
            if not result.complete:
                fig.text(
                    0.5, 0.0, INCOMPLETE, ha="center", va="top", color="#D55E00", fontsize=10, weight="bold"
                )
            written += save(fig, out_dir / f"{prefix}-{name}", formats)
    return written


INCOMPLETE = "INCOMPLETE: an interrupted run; figures from the processes it finished (poolbench run --resume)"


def plot_comparison(comparison: Comparison, out_dir: Path, formats: Sequence[str]) -> list[Path]:
    fig = comparison_figure(comparison)
    return save(fig, out_dir / "compare-time", formats) if fig is not None else []


def plot_file(result: Result, path: Path, out: Path | None, formats: Sequence[str]) -> list[Path]:
    """The figures of the result saved in ``path``: named after it, into ``out`` or beside it."""
    if not any(c.status == "ok" for c in result.cells):
        raise ResultFileError(f"{path}: nothing to plot (no cell was measured)")
    written = plot_result(result, out or path.parent, path.stem, formats)
    if not written:
        raise ResultFileError(f"{path}: nothing to plot")
    return written
