"""Pure value formatting shared by the table, Markdown and CSV outputs."""

from __future__ import annotations

from typing import Any

from ..report import CellReport


def duration(ns: float | None) -> str:
    """A time in the unit that keeps 3-4 significant digits: ``812 ns``, ``4.06 µs``, ``1.7 ms``."""
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}" if ns / scale < 100 else f"{ns / scale:.0f} {unit}"
    return f"{ns:.3g} ns" if ns < 100 else f"{ns:.0f} ns"


def count(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if value and abs(value) < 10**-digits:
        return f"{value:.2g}"
    return f"{value:,.{digits}f}"


def size(n: float | None, *, as_param: bool = False) -> str:
    """Bytes for reading: ``669 B``, ``64.7 KiB``, ``1.0 MiB``. The one size formatter.

    ``as_param=True`` gives the form ``-p`` takes back: ``64KiB`` for an exact binary multiple,
    the plain number otherwise (``list`` shows defaults this way, figures label sweeps with it).
    """
    if n is None:
        return "-"
    units = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
    if as_param:
        for unit, scale in units:
            if n >= scale and n % scale == 0:
                return f"{int(n // scale)}{unit}"
        return f"{n:g}"
    for unit, scale in units:
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def rate(ops: float | None) -> str:
    if ops is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if ops >= scale:
            return f"{ops / scale:.3g}{unit}"
    return f"{ops:.3g}"


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def time_ci(r: CellReport) -> str:
    if r.time is None:
        return "-"
    return f"{duration(r.time.median)} ±{_half_width(r):.0%}"


def _half_width(r: CellReport) -> float:
    assert r.time is not None
    m = r.time.median
    return max(m - r.time.ci_low, r.time.ci_high - m) / m if m else 0.0


def gc_rates(r: CellReport) -> str:
    if r.gc_per_kop is None:
        return "-"
    return "/".join(count(x, 2 if x < 10 else 0) for x in r.gc_per_kop)


def speedup(r: CellReport) -> str:
    s = r.speedup
    if s is None:
        return ""
    return f"{s.ratio:.2f}x [{s.ci_low:.2f}-{s.ci_high:.2f}]"


def waits(r: CellReport) -> str:
    w = r.waits
    if w is None:
        return "-"
    n, ms, timeouts = w
    return f"{n:,} / {duration(ms * 1e6) if n else '0 s'} / {timeouts}"


def where(metadata: dict[str, Any]) -> str:
    """``Python 3.11.7 (free-threaded), AMD EPYC, 2 CPUs``: the line titles and headers show;
    ``Python 3.11.7 and 3.13.5 (free-threaded), ...`` for a run under several interpreters."""
    infos = metadata.get("interpreters")
    shown = [metadata] if not isinstance(infos, dict) or not infos else list(infos.values())
    versions = " and ".join(
        f"{info.get('python_version', '?')}" + ("" if info.get("gil_enabled", True) else " (free-threaded)")
        for info in shown
        if isinstance(info, dict)
    )
    return f"Python {versions}, {metadata.get('cpu_model', '?')}, {metadata.get('cpu_count', '?')} CPUs"


VERDICT_WORDS = {
    "wins": "pooling wins",
    "loses": "pooling loses",
    "same": "no difference",
    "inconclusive": "inconclusive",
    "unstable": "unstable",
}


def verdict(r: CellReport) -> str:
    """The verdict in words: an inconclusive one with the processes that would likely settle it;
    a cell whose processes split with its modes, their shares and which strategy's time split."""
    s = r.speedup
    if s is None:
        return ""
    words = VERDICT_WORDS[s.verdict]
    if s.verdict == "inconclusive":
        if s.processes < 2:
            words += " (one process: other layouts not seen)"
        elif s.more is None:
            words += " (on the 5% floor: more processes would not settle it)"
        else:
            words += f" (~{s.more:,} more process{'' if s.more == 1 else 'es'})"
    if s.stability is not None and s.stability.split:
        modes = " / ".join(f"{m.value:.2f}x in {m.share:.0%}" for m in s.stability.modes)
        words += f" (processes split: {modes}"
        words += f"; {r.split}" if r.split else ""
        words += ")"
    return words


def memory(r: CellReport) -> str:
    """Peak RSS of the strategy's own pass, and what the pass added over the clean baseline."""
    m = r.cell.memory
    if m is None:
        return size(r.cell.peak_rss_bytes) if r.cell.peak_rss_bytes else "-"
    text = f"{size(m.peak_bytes)} (+{size(m.added_bytes)})"
    return text if m.peak_reset else text + " lifetime"


def pause_per_op(r: CellReport) -> str:
    return "-" if r.gc_pause_ns_per_op is None else duration(r.gc_pause_ns_per_op)


def instructions(mine: Any, base: Any, spread: float = 0.0) -> str:
    """Instructions per op (``72.3k``: :func:`rate`'s three digits), the spread of its repeats where they differed (``±0.2%``),
    and for a pooled cell its change against none's (``-48%``)."""
    if mine is None:
        return "-"
    shown = rate(mine.Ir)
    if spread:
        shown += f" ±{spread / 2:.1%}"
    if base is None or base is mine or not base.Ir:
        return shown
    return f"{shown} ({mine.Ir / base.Ir - 1:+.0%})"


def cycles(mine: Any) -> str:
    """Estimated cycles per op and last-level misses per op (``95.3k · 0.00``)."""
    return "-" if mine is None else f"{rate(mine.est_cycles)} · {count(mine.ll_misses, 2)}"
