"""Starting one worker process and getting its answer back, within a bound: the only place that
spawns, waits for and kills workers (``run`` and ``doctor`` both come through here)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .errors import UsageError
from .protocol import Answer, Job, MeasureJob, ProtocolError
from .worker_process import PARENT_ENV


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
KILL_WAIT = 5.0
"""Seconds the parent waits for a killed worker to be reaped before it gives up on it."""


_FOLDER_PREFIX = "poolbench-worker-"
_cleaned = False


def remove_stale_folders() -> None:
    """Remove the worker folders of poolbench processes that no longer run (a ``kill -9`` gives a
    parent no chance to remove its own): each folder is named after the pid of the parent that
    made it. Once per process."""
    global _cleaned
    if _cleaned:
        return
    _cleaned = True
    for folder in Path(tempfile.gettempdir()).glob(f"{_FOLDER_PREFIX}*-*"):
        pid = folder.name[len(_FOLDER_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # that poolbench still runs
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue  # another user's process, alive


def _tail(path: Path, limit: int = OUTPUT_CAP) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_worker(python: str, job: Job, timeout: float) -> Answer | WorkerFailure:
    """Run one worker process; its answer, or why there is none.

    The worker's output goes to files, not pipes: a pipe stays open as long as any child the
    scenario started holds it, and waiting for it made ``--timeout 3`` take 61 s (or forever). The
    parent waits for the worker *process*, at most ``timeout``; then its process group is killed
    and reaped with a bounded wait. An answer the worker wrote is used even if a child it left
    behind is still running.
    """
    command, env = worker_command(python)
    if isinstance(job, MeasureJob):
        env[layout.PAD_ENV] = layout.environment_padding(job.layout_seed)
    remove_stale_folders()
    with tempfile.TemporaryDirectory(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-") as tmp:
        out = Path(tmp) / "answer.json"
        spec_path = Path(tmp) / "job.json"
        spec_path.write_text(json.dumps({**job.to_json(), "out": str(out)}), encoding="utf-8")
        err_path = Path(tmp) / "stderr.txt"
        with open(spec_path, "rb") as stdin, open(err_path, "wb") as stderr:
            proc = subprocess.Popen(
                command,
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**env, PARENT_ENV: str(os.getpid())},
                start_new_session=True,  # Ctrl-C reaches the parent only; a timeout kills the group
            )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            if not out.exists():  # an answer written before something held the worker up counts
                return WorkerFailure(f"timed out after {timeout:g} s (--timeout)")
        except BaseException:
            _kill(proc)
            raise
        _kill_group(proc)  # whatever the scenario left running in the worker's group
        if out.exists():
            try:
                answer = Answer.from_json(json.loads(out.read_text(encoding="utf-8")))
            except (ValueError, ProtocolError) as exc:
                return WorkerFailure(f"the worker wrote a corrupt answer ({exc})", _tail(err_path, 2000))
            if answer.ok:
                return answer
            if answer.skip is not None:
                return WorkerFailure(answer.skip, skipped=True)
            return WorkerFailure(str(answer.error), answer.traceback or "")
        tail = "\n".join(_tail(err_path).strip().splitlines()[-5:])
        return WorkerFailure(_describe_exit(proc.returncode), tail)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(proc: subprocess.Popen[bytes]) -> None:
    _kill_group(proc)
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=KILL_WAIT)
    except subprocess.TimeoutExpired:
        pass  # a process stuck in the kernel: not ours to wait for any longer


def check_python(python: str) -> dict[str, Any]:
    """The interpreter ``--python`` names must exist and import poolbench's worker."""
    probe = "import json, poolbench.env as e; print(json.dumps(e.interpreter()))"
    try:
        done = subprocess.run([python, "-P", "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run --python {python}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(
            f"--python {python} cannot import poolbench ({last})",
            hint=f"install poolbench into that interpreter: {python} -m pip install poolbench",
        )
    info: dict[str, Any] = json.loads(done.stdout)
    return info
