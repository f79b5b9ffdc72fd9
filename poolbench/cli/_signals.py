"""Stop signals: SIGTERM and SIGHUP end a command as Ctrl-C does.

A cancelled CI job sends SIGTERM, a closed terminal or SSH session SIGHUP. Their default action
kills poolbench where it stands: a run's finished cells unsaved, a profiled program left running
with its capture growing. The handler raises :class:`~poolbench.errors.Stopped`, a
``KeyboardInterrupt``, so every ``finally`` and every Ctrl-C path runs.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ..errors import Stopped

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop(signum: int, frame: FrameType | None) -> None:
    """The first stop signal raises :class:`Stopped`; the ones that follow, while the command saves,
    ends its children and exits, are ignored by the kernel (three quick SIGTERMs ended a run with 143:
    the default action was back before it had exited)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Handle :data:`STOP_SIGNALS` for the command inside; the caller's handlers come back after it,
    unless a stop signal came (its SIG_IGN stays until the process exits)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a test runner's worker thread)
        return
    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _stop:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
