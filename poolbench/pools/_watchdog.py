"""The checking watchdog: one daemon thread for the process that arms level simple's next sample
and reports objects held too long, while the program runs."""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from typing import Protocol

from ._checker import Checker


class Ticking(Protocol):
    def tick(self, now: float) -> None: ...


samplers: weakref.WeakSet[Ticking] = weakref.WeakSet()
"""Level simple's samplers (each ``tick``s from the watchdog)."""
checkers: weakref.WeakSet[Checker] = weakref.WeakSet()
"""Every live checker; a checker lives as long as its pool."""
_watchdog: threading.Thread | None = None
_watchdog_lock = threading.Lock()
_every = [float("inf")]


def start(every: float) -> None:
    """Start the watchdog (:func:`_watch`) if it is not running, waking at least every ``every``
    seconds (a sampler's period, half a held threshold)."""
    global _watchdog
    _every[0] = min(_every[0], every)
    with _watchdog_lock:
        if _watchdog is None:
            _watchdog = threading.Thread(target=_watch, name="poolbench-check-watchdog", daemon=True)
            _watchdog.start()


def running() -> bool:
    return _watchdog is not None


def _watch() -> None:
    """Arm level simple's next sample, and report on stderr every checker's objects out longer
    than their ``held`` threshold, once each, while the program runs (waking twice per shortest
    threshold). Ends when every checked pool that needs it is gone."""
    global _watchdog
    while True:
        time.sleep(_every[0])
        now = time.monotonic()
        ticking, held = list(samplers), [c for c in list(checkers) if c.held is not None]
        if not ticking and not held:
            with _watchdog_lock:
                if not samplers and not any(c.held is not None for c in list(checkers)):
                    _watchdog = None
                    return
        sampler = checker = None
        for sampler in ticking:
            sampler.tick(now)
        for checker in held:
            for f in checker.check_held(now):
                print(f"poolbench check: held-too-long in {checker.name} at {f.site}: {f.detail}\n"
                      f"    fix: {f.hint}", file=sys.stderr, flush=True)  # fmt: skip
        # No reference may outlive the loop: a sleeping watchdog must not keep a pool alive.
        del ticking, held, sampler, checker


def _restart_in_child() -> None:
    """A forked child has no watchdog thread (threads do not survive ``fork``): start its own."""
    global _watchdog
    _watchdog = None
    if samplers or any(c.held is not None for c in checkers):
        start(_every[0])


os.register_at_fork(after_in_child=_restart_in_child)
