"""The garbage-collection and memory pass inside a worker.

Collections per generation (``gc.get_stats()`` deltas) and pause times (``gc.callbacks``) while a
strategy runs, and the memory of that strategy alone: before its pass every *other* pool of the
process is emptied and its memory handed back (``gc.collect()``, glibc's ``malloc_trim``), so the
peak is this strategy's own and not what another pool still retains.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import time
from collections.abc import Callable

from .result import GcStats, MemoryStats
from .timing import Clock


def trim_heap() -> None:
    """Give freed heap memory back to the kernel (glibc's ``malloc_trim``), so RSS falls."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux: ``clear_refs`` 5).

    psutil reports the current RSS but not a resettable peak, and ``ru_maxrss`` is a lifetime peak
    that would give every strategy after the first the same figure. False when it cannot be reset:
    the result then says so instead of passing a lifetime peak off as the pass's own.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss() -> int:
    found = _status("VmHWM:")
    return found if found is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    found = _status("VmRSS:")
    if found is not None:
        return found
    import psutil  # type: ignore[import-untyped]

    return int(psutil.Process().memory_info().rss)


def clean_slate() -> int:
    """Collect, trim, and return the RSS a pass starts from."""
    gc.collect()
    trim_heap()
    return current_rss()


def gc_pass(
    run: Callable[[], object],
    *,
    warm: Callable[[], object] | None = None,
    clock: Clock = time.perf_counter_ns,
) -> tuple[GcStats, MemoryStats]:
    """GC work while ``run()`` runs (``ops`` left for the caller to say), and the memory of
    ``warm()`` + ``run()`` over a clean slate.

    The collector stays as it is (enabled, default thresholds); ``warm`` fills a pool before the
    counters start, so its misses are not part of the pass.
    """
    pauses: list[int] = []
    started = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = clock()
        else:
            pauses.append(clock() - started[0])

    baseline = clean_slate()
    resettable = reset_peak_rss()
    if warm is not None:
        warm()
    before = gc.get_stats()
    gc.callbacks.append(on_gc)
    try:
        run()
    finally:
        gc.callbacks.remove(on_gc)
    after = gc.get_stats()
    peak = peak_rss()
    collections = [a["collections"] - b["collections"] for a, b in zip(after, before, strict=False)]
    return (
        GcStats(0, collections, sum(pauses), max(pauses, default=0), processes=1),
        MemoryStats(peak, max(0, peak - baseline), resettable),
    )
