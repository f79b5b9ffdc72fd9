"""What a result must record about the machine and interpreter that produced it."""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

ENV_KEYS = (
    "python_version",
    "python_implementation",
    "gil_enabled",
    "cpu_model",
    "cpu_count",
    "poolbench_version",
)
"""Metadata two results must share for their times to be compared (``compare`` warns, ``merge``
refuses)."""


def gil_enabled() -> bool:
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def interpreter() -> dict[str, Any]:
    """The interpreter running this code (a worker reports its own: ``--python`` may differ)."""
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "python_build": " ".join(platform.python_build()),
        "gil_enabled": gil_enabled(),
    }


def label(interpreter: Mapping[str, Any]) -> str:
    """``3.11`` or ``3.13t`` (free-threaded): how tables, files and plots name an interpreter."""
    version = str(interpreter.get("python_version") or "?")
    short = ".".join(version.split(".")[:2])
    return short + ("" if interpreter.get("gil_enabled", True) else "t")


def labels(interpreters: Sequence[Mapping[str, Any]]) -> list[str]:
    """One distinct label per interpreter: a second 3.11 (another venv) is ``3.11-2``."""
    out: list[str] = []
    for info in interpreters:
        name = label(info)
        n = 2
        while name in out:
            name = f"{label(info)}-{n}"
            n += 1
        out.append(name)
    return out


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count() or 0,
        "cpu_model": cpu_model(),
    }


def check_python(python: str) -> dict[str, Any]:
    """The interpreter ``--python`` names must exist and import poolbench's worker: what it is."""
    import json
    import subprocess

    from . import processes
    from .errors import UsageError

    probe = "import json, poolbench.env as e; print(json.dumps(e.interpreter()))"
    try:
        done = processes.probe([python, "-P", "-c", probe], timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run --python {python}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(
            f"--python {python} cannot import poolbench ({last})",
            hint=f"install poolbench into that interpreter: {python} -m pip install poolbench",
        )
    try:
        info = json.loads(done.stdout)
        if not isinstance(info, dict) or "python_version" not in info:
            raise ValueError(done.stdout[:80])
    except ValueError:
        raise UsageError(
            f"--python {python} is not a Python interpreter with poolbench (it answered "
            f"{done.stdout.strip()[:60]!r} to a Python probe)",
            hint="give the path of a python executable, e.g. --python ~/.venvs/pb-3.13t/bin/python",
        ) from None
    return dict(info)
