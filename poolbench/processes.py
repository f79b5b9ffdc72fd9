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

import json
import os
import select
import signal
import subprocess
import sys
import time
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
    cwd: str | os.PathLike[str] | None = None,
) -> Child:
    """Start ``command`` in a session of its own, told this process's pid (:data:`PARENT_ENV`)."""
    return subprocess.Popen(
        list(command),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env={**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())},
        start_new_session=True,
        cwd=cwd,
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


class ForkServer:
    """A process that forks a child per request (its side is :func:`serve_forks`): started with
    ``command``, it imports what its children need once; each child reads its request (one line
    of JSON on stdin, :func:`read_request`) and the server answers ``pid N`` when it starts and
    ``exit N`` when it ends. It dies with this process; one that fails in any way is closed."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], *, start_timeout: float,
                 stderr: Stream = subprocess.DEVNULL, cwd: str | os.PathLike[str] | None = None) -> None:  # fmt: skip
        self.proc: Child | None = start(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd
        )
        self.start_timeout = start_timeout
        """Seconds it may take to start, import and fork its first child."""
        self._buffer = b""
        self._started = False

    @property
    def alive(self) -> bool:
        return self.proc is not None

    def request(self, payload: Mapping[str, Any]) -> int | None:
        """Fork a child for ``payload``; its pid, or ``None`` if the server cannot."""
        proc = self.proc
        if proc is None or proc.stdin is None:
            return None
        try:
            proc.stdin.write(json.dumps(payload).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            self.close()
            return None
        reply = self._line(self.start_timeout if not self._started else KILL_WAIT)
        self._started = True
        word, _, pid = (reply or "").partition(" ")
        if word != "pid" or not pid.isdigit():
            self.close()
            return None
        return int(pid)

    def exit_code(self, timeout: float) -> int | None:
        """The exit code the server reports for its child, or ``None`` after ``timeout`` s; a
        server that dies or says something else is closed (its child died with it)."""
        reply = self._line(timeout, close=False)
        if reply is None:
            if self.proc is None or self.proc.poll() is not None:
                self.close()
                return -signal.SIGKILL
            return None
        word, _, code = reply.partition(" ")
        try:
            if word != "exit":
                raise ValueError(reply)
            return int(code)
        except ValueError:
            self.close()
            return -signal.SIGKILL

    def _line(self, timeout: float, *, close: bool = True) -> str | None:
        """The next line the server writes, within ``timeout`` s; ``None`` (the server closed
        when ``close``) if none comes."""
        proc = self.proc
        if proc is None or proc.stdout is None:
            return None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            ready = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]
            if not ready:
                if close:
                    self.close()
                return None
            chunk = os.read(fd, 4096)
            if not chunk:  # the server ended
                self.close()
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("ascii", "replace").strip()

    def close(self) -> None:
        """End it: stdin closed (its loop ends), its group killed, reaped within :data:`KILL_WAIT`."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        kill_group(proc.pid)
        wait(proc, KILL_WAIT)


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


NO_REQUEST = 199
"""A forked child's exit code when stdin held no request: the parent closed it, and
:func:`serve_forks` ends."""


def detach(stderr: str | None = None) -> None:
    """A forked child's own process group (a timeout kills the group, as a started child's), and
    its standard streams off the server's pipes: stdin and stdout to ``/dev/null``, stderr to the
    file ``stderr`` (truncated) or ``/dev/null``."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if stderr else null
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    for fd in {null, err}:
        os.close(fd)


def read_request() -> dict[str, Any] | None:
    """A forked child's request: the line on stdin, read a byte at a time (a buffered read would
    take the next request's bytes with it); ``None`` at its end."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte:
            return None
        line += byte
    request: dict[str, Any] = json.loads(line)
    return request


def serve_forks(child: Callable[[], NoReturn], *, last: int = NO_REQUEST) -> int:
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
