"""What a worker process does about its parent, before anything else: die with it.

The parent starts each worker in a session of its own (so Ctrl-C reaches the parent only, and a
timeout can kill the worker's whole process group). Then the kernel would not end the worker if
the parent were killed with ``kill -9``; so the worker asks for ``SIGKILL`` when its parent dies
(Linux ``PR_SET_PDEATHSIG``), and leaves at once if the parent is already gone. Done in the
worker, not in a ``preexec_fn``, which is unsafe in a parent that runs threads (rich's progress
bar does).
"""

from __future__ import annotations

import os
import signal

PARENT_ENV = "POOLBENCH_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    expected = os.environ.get(PARENT_ENV)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the parent still kills its workers on every way out it controls
    if expected and expected.isdigit() and os.getppid() != int(expected):
        os._exit(1)  # the parent died before the request was made
