"""Child processes: the only module that starts, forks, waits for and kills them.

Every process poolbench starts (workers, templates and the workers they fork, the ``profile``
child, the ``--python`` probe) is made here, with the same rules:

* a session of its own (``start_new_session``): Ctrl-C reaches poolbench only, and a timeout or an
  interruption kills the child's whole process group;
* it dies with poolbench: the child calls :func:`die_with_parent` first thing (Linux
  ``PR_SET_PDEATHSIG``; not a ``preexec_fn``, unsafe in a parent that runs threads, as rich's
  progress bar does), and leaves at once if poolbench is already gone;
* output to files or ``/dev/null``, never to pipes poolbench waits on (a pipe stays open while
  any child the scenario started holds it: waiting for one made ``--timeout 3`` take 61 s);
* bounded waits: a kill is reaped within :data:`KILL_WAIT` seconds, or given up on;
* what a program leaves running is ended with it (:class:`Descendants`).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, NoReturn, TypeAlias

PARENT_ENV = "POOLBENCH_PARENT_PID"
"""The pid a child must find as its parent (:func:`die_with_parent`)."""
KILL_WAIT = 5.0
"""Seconds to wait for a killed child to be reaped before giving up on it."""
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

Stream = int | IO[Any] | None
Child: TypeAlias = "subprocess.Popen[bytes]"
"""A process started by :func:`start`."""


# ---------------------------------------------------------------------------------------------
# The parent's side


def start(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: Stream = subprocess.DEVNULL,
    stdout: Stream = subprocess.DEVNULL,
    stderr: Stream = None,
) -> Child:
    """Start ``command`` in a session of its own, told this process's pid (:data:`PARENT_ENV`)."""
    return subprocess.Popen(
        list(command),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env={**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())},
        start_new_session=True,
    )


def probe(command: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a short command to its end and read its output (``--python``'s check)."""
    return subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group ``pid`` leads (a child started here leads its own)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait(proc: Child, timeout: float) -> int | None:
    """Its exit code (negative: the signal that ended it), or ``None`` after ``timeout`` s."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def kill(proc: Child) -> int | None:
    """Kill it and its group; its exit code once reaped (a bounded wait), else ``None`` (a process
    stuck in the kernel is not ours to wait for longer)."""
    kill_group(proc.pid)
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    return wait(proc, KILL_WAIT)


def interrupt(proc: Child, grace: float) -> None:
    """Ctrl-C its group (its ``finally`` blocks run: memray closes its recording), then kill the
    group if it has not stopped within ``grace`` seconds (reaped within :data:`KILL_WAIT`)."""
    kill_group(proc.pid, signal.SIGINT)
    if wait(proc, grace) is None:
        kill(proc)


class Descendants:
    """Every process a child starts ends with it.

    Those that stay in its process group (a plain ``fork`` or ``subprocess``) are killed with the
    group; those that left it (``setsid``, a daemon's double fork) are orphans, which Linux hands to
    this process while it is a child subreaper (``PR_SET_CHILD_SUBREAPER``) rather than to init,
    so they are found among this process's children, killed and reaped. Elsewhere only the group is.
    """

    def __enter__(self) -> Descendants:
        import psutil  # type: ignore[import-untyped]

        self._before = {p.pid for p in psutil.Process().children(recursive=True)}
        self._reaper = _subreaper(True)
        return self

    def end(self, group: int) -> int:
        """Kill what is left of ``group`` and every new descendant; how many were still running."""
        import psutil

        me = psutil.Process()
        left = {
            p.pid for p in psutil.process_iter() if p.pid != group and _pgid(p.pid) == group and _alive(p)
        }
        for _ in range(20):  # a killed process's own children are orphaned, and found, a round later
            kill_group(group)
            strays = [p for p in me.children(recursive=True) if p.pid not in self._before]
            if not strays:
                break
            for p in strays:
                if _alive(p):
                    left.add(p.pid)
                try:
                    p.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(strays, timeout=1)
        return len(left)

    def __exit__(self, *exc: object) -> None:
        if self._reaper:
            _subreaper(False)


def _subreaper(on: bool) -> bool:
    """Make this process a child subreaper (or stop); False where the platform has no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _alive(process: Any) -> bool:
    import psutil

    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


# ---------------------------------------------------------------------------------------------
# The child's side


def die_with_parent() -> None:
    """Ask for ``SIGKILL`` when the parent dies; leave at once if it already has."""
    expected = os.environ.get(PARENT_ENV)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the parent still kills its children on every way out it controls
    if expected and expected.isdigit() and os.getppid() != int(expected):
        os._exit(1)  # the parent died before the request was made


def serve_forks(child: Callable[[], NoReturn], *, last: int) -> int:
    """Fork one child per request on stdin, one at a time (a template's loop): write ``pid N``
    when it starts and ``exit N`` when it ends; ``child`` runs in the fork and leaves with its exit
    code (``os._exit``). A child that ends with ``last`` (it found stdin at its end) ends the loop.
    Nothing here allocates per request that it keeps."""
    while True:
        select.select([0], [], [])
        pid = os.fork()
        if pid == 0:
            child()
        os.write(1, b"pid %d\n" % pid)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == last:
            return 0
        os.write(1, b"exit %d\n" % code)
