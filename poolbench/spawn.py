"""Running one worker process and getting its answer back, within a bound (``run`` and ``doctor``
both come through here); templates that fork workers. Processes themselves are made and ended in
:mod:`poolbench.processes`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import layout, processes
from .protocol import Answer, Job, MeasureJob, ProtocolError


@dataclass(frozen=True)
class WorkerFailure:
    message: str
    detail: str = ""
    skipped: bool = False


KILLED = "the worker was killed by"


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"{KILLED} {signal.Signals(-code).name}"
        except ValueError:
            return f"{KILLED} signal {-code}"
    return f"the worker exited with code {code}"


def worker_command(python: str) -> tuple[list[str], dict[str, str]]:
    """How to start a worker that imports the same poolbench as this process.

    ``-P`` keeps the current directory off the worker's path: run from a checkout, ``-m`` would
    otherwise import the checkout's source instead of the installed package. With this
    interpreter, the worker's path starts with the folder this poolbench was imported from; another
    interpreter (``--python``) uses the poolbench installed in it.
    """
    env = dict(os.environ)
    if python != sys.executable:
        return [python, "-P", "-m", "poolbench.worker"], env
    home = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-P", "-m", "poolbench.worker"], env


OUTPUT_CAP = 64 * 1024
"""Bytes of a worker's stderr the parent reads back (its tail): a scenario that prints 300 MB must
not cost the parent 300 MB."""
KILL_WAIT = processes.KILL_WAIT


_cleaned = False


def folder_prefix(kind: str) -> str:
    """``poolbench-KIND-PID-``: the prefix of every temporary folder poolbench (or a built-in
    scenario) makes, named after the process that owns it, so the sweep can tell a dead owner's."""
    return f"poolbench-{kind}-{os.getpid()}-"


def remove_stale_folders() -> None:
    """Remove the temporary folders of poolbench processes that no longer run (a ``kill -9``
    gives a process no chance to remove its own): workers' folders, counting captures
    (``allocations.bin``), profiles, the built-in database scenario's files, each named after
    the pid of the process that made it (:func:`folder_prefix`). Once per process."""
    global _cleaned
    if _cleaned:
        return
    _cleaned = True
    for folder in Path(tempfile.gettempdir()).glob("poolbench-*-*-*"):
        parts = folder.name.split("-")
        pid = parts[2] if len(parts) >= 4 else ""
        if not pid.isdigit() or int(pid) == os.getpid() or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # that process still runs
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (PermissionError, OverflowError):
            continue  # another user's process, alive (or no pid at all)


def _tail(path: Path, limit: int = OUTPUT_CAP) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_worker(
    python: str, job: Job, timeout: float, *, templates: Templates | None = None
) -> Answer | WorkerFailure:
    """Run one worker process; its answer, or why there is none.

    With ``templates``, the worker is forked from a template process of ``python`` (see
    :class:`Templates`); without, or when the template cannot serve, it is started afresh.

    The worker's output goes to files, not pipes: a pipe stays open as long as any child the
    scenario started holds it, and waiting for it made ``--timeout 3`` take 61 s (or forever). The
    parent waits for the worker *process*, at most ``timeout``; then its process group is killed
    and reaped with a bounded wait. An answer the worker wrote is used even if a child it left
    behind is still running.
    """
    launch = Launch(python, job, templates)
    try:
        code = launch.worker.wait(timeout)
    except BaseException:
        launch.abandon()
        raise
    return launch.finish(code, timeout)


def run_workers(
    jobs: Sequence[tuple[str, Job]],
    timeout: float,
    *,
    parallel: int,
    on_answer: Callable[[int, Answer | WorkerFailure], None],
    keep: Callable[[int], bool] = lambda index: True,
    templates: bool | None = None,
) -> None:
    """Run ``(python, job)`` workers, at most ``parallel`` at once (each slot with templates of
    its own), calling ``on_answer(index, answer)`` as each ends; a job for which ``keep(index)``
    is false when its turn comes is left out. For work that times nothing (counting): timed
    workers run one at a time. Interrupted, it kills every worker it started."""
    slots = [Templates(enabled=templates) for _ in range(max(1, parallel))]
    running: dict[int, tuple[Launch, float, Templates]] = {}
    todo = list(enumerate(jobs))
    try:
        while todo or running:
            while todo and len(running) < len(slots):
                index, (python, job) = todo.pop(0)
                if not keep(index):
                    continue
                free = next(t for t in slots if all(t is not r[2] for r in running.values()))
                running[index] = (Launch(python, job, free), time.monotonic() + timeout, free)
            for index, (launch, deadline, _) in list(running.items()):
                left = deadline - time.monotonic()
                code = launch.worker.wait(0.0)
                if code is None and left > 0:
                    continue
                del running[index]
                on_answer(index, launch.finish(code, timeout))
            if running:
                time.sleep(POLL)
    except BaseException:
        for launch, _, _ in running.values():
            launch.abandon()
        raise
    finally:
        for slot in slots:
            slot.renew()


POLL = 0.01
"""Seconds between looks at workers running side by side."""


class Launch:
    """One started worker: its job and answer files in a folder of its own, and the process."""

    def __init__(self, python: str, job: Job, templates: Templates | None) -> None:
        remove_stale_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=folder_prefix("worker")))
        try:
            self.out = self.folder / "answer.json"
            spec_path = self.folder / "job.json"
            spec_path.write_text(
                _padded(json.dumps({**job.to_json(), "out": str(self.out)})), encoding="utf-8"
            )
            self.err_path = self.folder / "stderr.txt"
            template = templates.get(python) if templates is not None else None
            pid = template.fork(spec_path, self.err_path) if template is not None else None
            if template is not None and pid is not None:
                self.worker: _Worker = _Forked(template, pid)
            else:
                self.worker = _spawn(python, job, spec_path, self.err_path)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def abandon(self) -> None:
        """Kill it and remove its folder (the parent is on its way out)."""
        self.worker.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def finish(self, code: int | None, timeout: float) -> Answer | WorkerFailure:
        """Its answer, once it exited with ``code`` (``None``: it outlived ``timeout``)."""
        try:
            return self._answer(code, timeout)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _answer(self, code: int | None, timeout: float) -> Answer | WorkerFailure:
        out = self.out
        if code is None:
            code = self.worker.kill()
            if not out.exists():  # an answer written before something held the worker up counts
                return WorkerFailure(f"timed out after {timeout:g} s (--timeout)")
        self.worker.kill_group()  # whatever the scenario left running in the worker's group
        if out.exists():
            try:
                answer = Answer.from_json(json.loads(out.read_text(encoding="utf-8")))
            except (ValueError, ProtocolError) as exc:
                return WorkerFailure(f"the worker wrote a corrupt answer ({exc})", _tail(self.err_path, 2000))
            if answer.ok:
                return answer
            if answer.skip is not None:
                return WorkerFailure(answer.skip, skipped=True)
            return WorkerFailure(str(answer.error), answer.traceback or "")
        tail = "\n".join(_tail(self.err_path).strip().splitlines()[-5:])
        return WorkerFailure(_describe_exit(code if code is not None else -signal.SIGKILL), tail)


JOB_SIZE = 16 * 1024


def _padded(text: str) -> str:
    """The job's JSON padded with spaces to a fixed length: the worker reads it before it shifts
    its heap by its layout seed, and a text of another length (loops of more digits, a longer
    path) moved where the scenario's buffers landed, so that a seed did not give its mode again."""
    return text + " " * max(0, -len(text) % JOB_SIZE)


def _spawn(python: str, job: Job, spec_path: Path, err_path: Path) -> _Spawned:
    """A worker started afresh: ``python -m poolbench.worker`` reading the job on stdin."""
    command, env = worker_command(python)
    if isinstance(job, MeasureJob):
        env[layout.PAD_ENV] = layout.environment_padding(job.layout_seed)
    with open(spec_path, "rb") as stdin, open(err_path, "wb") as stderr:
        return _Spawned(processes.start(command, env=env, stdin=stdin, stderr=stderr))


class _Worker:
    """A running worker, however it was started: its process group is its own (pid = pgid)."""

    pid: int

    def wait(self, timeout: float) -> int | None:
        """Its exit code (negative: the signal that ended it), or ``None`` after ``timeout`` s."""
        raise NotImplementedError

    def reaped(self, timeout: float) -> int | None:
        return self.wait(timeout)

    def kill_group(self) -> None:
        processes.kill_group(self.pid)

    def kill(self) -> int | None:
        """Kill it and its group; its exit code once reaped (a bounded wait), else ``None``."""
        self.kill_group()
        return self.reaped(KILL_WAIT)  # a process stuck in the kernel is not ours to wait for longer


class _Spawned(_Worker):
    def __init__(self, proc: processes.Child) -> None:
        self.proc = proc
        self.pid = proc.pid

    def wait(self, timeout: float) -> int | None:
        return processes.wait(self.proc, timeout)

    def kill(self) -> int | None:
        return processes.kill(self.proc)


class _Forked(_Worker):
    def __init__(self, template: Template, pid: int) -> None:
        self.template = template
        self.pid = pid

    def wait(self, timeout: float) -> int | None:
        return self.template.exit_code(timeout)

    def kill(self) -> int | None:
        code = super().kill()
        if code is None:  # not reaped: the template would answer for it later, out of turn
            self.template.close()
        return code


TEMPLATE_START = 60.0
"""Seconds a template may take to import and fork its first worker (not part of ``--timeout``)."""


class Template(processes.ForkServer):
    """A template process of one interpreter: ``python -m poolbench.worker --template``.

    It imports what a worker needs once, then forks each worker on request (the worker side is
    :func:`poolbench.worker.serve_template`): a started interpreter cost about 0.2 s of every
    worker process, a fork a few milliseconds. The template runs no scenario, so each worker starts
    as a fresh one would; it dies with this process (``PR_SET_PDEATHSIG``), and each worker with
    the template. A template that fails in any way is closed, and its worker started afresh.
    """

    def __init__(self, python: str) -> None:
        # No environment padding: a forked worker's heap then depends on its own layout seed
        # alone (what the template holds is the same in every template), so a seed a split cell
        # names gives its mode again under ``--layout-seed``. Its stack sits where the kernel's
        # randomization put the template's, a fresh draw for every template.
        command, env = worker_command(python)
        env.pop(layout.PAD_ENV, None)
        super().__init__([*command, "--template"], env, start_timeout=TEMPLATE_START)

    def fork(self, job: Path, stderr: Path) -> int | None:
        """Fork a worker for the job file ``job``; its pid, or ``None`` if the template cannot."""
        return self.request({"job": str(job), "stderr": str(stderr), "env": {}})


class Templates:
    """The template of each interpreter a run uses, started on first use; :meth:`renew` replaces
    them. A run renews them every round, so each worker process of a cell comes from a template
    of its own: workers forked from one template share its string-hash seed and its stack
    placement, which a started interpreter draws afresh."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = forking_works()
        self.enabled = enabled
        self._by_python: dict[str, Template] = {}

    def get(self, python: str) -> Template | None:
        if not self.enabled:
            return None
        template = self._by_python.get(python)
        if template is None or not template.alive:
            template = self._by_python[python] = Template(python)
        return template

    def renew(self) -> None:
        for template in self._by_python.values():
            template.close()
        self._by_python.clear()

    def __enter__(self) -> Templates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.renew()


TEMPLATE_ENV = "POOLBENCH_TEMPLATE"


def forking_works() -> bool:
    """Whether workers may be forked from a template: Linux (fork is safe with no threads in the
    template), unless ``POOLBENCH_TEMPLATE=0``."""
    return sys.platform == "linux" and hasattr(os, "fork") and os.environ.get(TEMPLATE_ENV, "1") != "0"
