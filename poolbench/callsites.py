"""Call sites in the user's own code: where a finding of the doctor or a site of ``poolbench
profile`` points (not poolbench, not the standard library, not an installed package)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _not_user_code() -> tuple[str, ...]:
    """Folders whose frames are never a finding's call site: poolbench itself, the standard
    library and installed packages (a site in typer's ``main.py`` tells a user nothing)."""
    import sysconfig

    paths = sysconfig.get_paths()
    folders = {_PACKAGE_DIR, *(paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
    return (*(os.path.join(os.path.realpath(f), "") for f in folders if f), "<frozen ")


_SKIPPED = _not_user_code()


@functools.lru_cache(maxsize=4096)
def user_code(filename: str) -> bool:
    """Whether frames of ``filename`` are the user's own code: not poolbench, not the standard
    library, not an installed package (the doctor's call sites, ``poolbench profile``'s sites)."""
    return not (filename.startswith(_SKIPPED) or os.path.realpath(filename).startswith(_SKIPPED))


def call_site(depth: int = 2, fallback: str | None = None) -> str:
    """``file:line in function`` of the first caller in the user's own code: not poolbench, not the
    standard library, not an installed package. ``fallback`` when there is none (a scenario whose
    ``run`` is poolbench's: the doctor passes the scenario's ``use`` definition)."""
    frame = sys._getframe(depth)
    while frame is not None and not user_code(frame.f_code.co_filename):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return fallback or "?"
    code = frame.f_code
    return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"


def stack_of(depth: int = 2, limit: int = 8) -> tuple[str, ...]:
    """The caller's stack outside poolbench, innermost first, at most ``limit`` frames: what a
    held-too-long report shows of the code that took the object."""
    frame: Any = sys._getframe(depth)
    out: list[str] = []
    while frame is not None and len(out) < limit:
        code = frame.f_code
        if not code.co_filename.startswith(os.path.join(_PACKAGE_DIR, "")):
            out.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        frame = frame.f_back
    return tuple(out)


def site_of(function: Callable[..., Any]) -> str | None:
    """``file:line in name`` where ``function`` is defined, or None for a builtin."""
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    if code is None:
        return None
    return f"{code.co_filename}:{code.co_firstlineno} in {code.co_name}"
