"""Checking mode: find pool misuse (the doctor), at no cost to pools that are not checked.

``checked(pool)`` replaces the pool's ``get``/``put`` with checking versions that call the
originals; ``POOLBENCH_CHECK=LEVEL`` in the environment does it to every pool created in the process
and prints the findings to stderr at exit. Unchecked pools keep their fast ``get``/``put``.

Levels (Netty's ``ResourceLeakDetector`` levels; costs per get+put in the README, from
``benchmarks/pools.py``):

* ``simple``: samples objects, one watched at a time for one round trip, the next one
  :data:`SAMPLE_PERIOD` seconds later (the first object put is the first watched); call sites and
  fingerprints only for the watched one, and nothing at all on a call while none is out: cheap
  enough to leave on. Finds leaks, double puts, writes after put and dirty reuse of the objects
  it watches; over a long run, of many.
* ``advanced``: every object, with the call sites of its recent gets and puts; no quarantine.
* ``paranoid`` (``POOLBENCH_CHECK=1``, the doctor's): ``advanced`` plus the quarantine and the
  fingerprints of idle objects checked on every get.

``POOLBENCH_CHECK_HELD=SECONDS`` (or ``checked(pool, held=SECONDS)``) reports an object out longer
than that once, while the program runs, with the stack that took it (HikariCP's
``leakDetectionThreshold``): a watchdog thread looks twice per threshold.

Findings (``Finding.kind``):

* ``leak``: taken and never returned (reported by :func:`Checker.finish` or at exit). bytearray,
  dict and list cannot be weakly referenced, so objects out are tracked by identity, held.
* ``double-put``: the same object returned twice with no ``get`` between (the second put is not
  passed on: the pool would hand the object to two borrowers).
* ``foreign-put``: an object returned that this pool never handed out.
* ``dirty-reuse``: an object handed out again whose fingerprint differs from a fresh object's.
* ``use-after-put``: an object changed while it sat in the pool (fingerprint at ``put`` against
  fingerprint before the next ``get``).
* ``pinned-bytes``: the pool keeps objects far larger than the ones it usually hands out.
* ``held-too-long``: an object out longer than the ``held`` threshold (reported while it runs).

A race mode (``race=0.25``) drops that fraction of puts at random, as Go's race detector does,
to expose code that assumes ``put`` then ``get`` returns the same object.
"""

from __future__ import annotations

import atexit
import inspect
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..callsites import call_site
from . import _watchdog
from ._base import Pool, bound_of
from ._checker import DEFAULT_FINGERPRINT, Checker, Finding, fingerprint, format_findings
from ._sampler import sample

__all__ = [
    "LEVELS",
    "QUARANTINE",
    "Checker",
    "Finding",
    "checked",
    "fingerprint",
    "format_findings",
    "maybe_check",
]

LEVELS = ("simple", "advanced", "paranoid")
QUARANTINE = 8
"""Objects a checking pool holds back after ``put``. 1 catches a write on the very next operation,
as in the examples; 8 also catches one a few operations later, for 8 objects of memory per pool."""
_reported: list[Checker] = []
"""The checkers ``POOLBENCH_CHECK`` made: their findings are printed at exit, pools gone or not."""


def checked(
    pool: Pool[Any],
    *,
    level: str = "paranoid",
    fingerprint: Callable[[Any], Any] = fingerprint,
    race: float = 0.0,
    name: str | None = None,
    fallback_site: str | None = None,
    quarantine: int | None = None,
    held: float | None = None,
) -> Pool[Any]:
    """Make ``pool`` a checking pool, in place (it is returned for convenience).

    ``pool.checker`` then holds the :class:`Checker`; ``pool.checker.finish()`` returns findings.
    ``fingerprint`` defaults to the pool's own ``fingerprint`` where it has one (the psycopg
    adapter: a connection's state changes with every query), else :func:`fingerprint`.
    ``level`` is ``simple``, ``advanced`` or ``paranoid`` (see the module; ``race`` and
    ``quarantine`` apply to the last two, ``simple`` never changes which object a get returns).
    ``fallback_site`` is
    where findings point when no frame of the user's code is on the stack. ``held``: seconds an
    object may be out before it is reported (once, while the program runs) with the stack that
    took it.

    ``quarantine`` (paranoid: :data:`QUARANTINE`, other levels 0): objects put back wait in a FIFO
    of this many before the pool can hand them out again (AddressSanitizer's quarantine),
    fingerprinted when they enter and checked when they leave: a write through a reference kept
    after ``put`` lands while the object waits, and is found as ``use-after-put`` with the put's
    site and the site of the ``get`` that released it. Without it, a LIFO pool hands the object
    put last straight back, and the stale write lands while it is legitimately out again (reported,
    wrongly, as dirty reuse or not at all). It changes when objects are reused, never what the
    program computes; the pool makes more objects meanwhile.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown checking level {level!r} (one of {', '.join(LEVELS)})")
    if held is not None and not held > 0:
        raise ValueError(f"held must be a positive number of seconds, not {held!r}")
    if fingerprint is DEFAULT_FINGERPRINT and callable(getattr(pool, "fingerprint", None)):
        fingerprint = pool.fingerprint  # type: ignore[attr-defined]  # a pool that knows its objects
    checker = Checker(name or f"{type(pool).__name__} at {call_site(2)}", fingerprint, race, fallback_site,
                      level=level, held=held)  # fmt: skip
    if level == "simple" and not inspect.iscoroutinefunction(pool.get):
        sample(pool, checker)  # an awaited get is checked in full: sampling swaps synchronous gets
    else:
        _check_all(
            pool, checker, QUARANTINE if quarantine is None and level == "paranoid" else quarantine or 0
        )
    pool.checker = checker  # type: ignore[attr-defined]
    _watchdog.checkers.add(checker)
    if held is not None:
        _watchdog.start(held / 2)
    return pool


def _check_all(pool: Pool[Any], checker: Checker, quarantine: int) -> None:
    """Levels advanced and paranoid: every get and put checked, through wrappers."""
    fallback_site = checker.fallback_site
    paranoid = checker.level == "paranoid"
    inner_get, inner_put = pool.get, pool.put
    bound = bound_of(pool)
    put_waits = inspect.iscoroutinefunction(inner_put)
    if put_waits:
        # asyncpg's and psycopg's async pools: a put is awaited, and a release from quarantine
        # would happen inside a get that cannot await it. Connections are checked by their state
        # (fingerprint) on the way out and in, not by a write after put.
        quarantine = 0
    if bound is not None:
        # A bounded pool counts quarantined objects as out: holding back as many as it allows
        # would make the next get wait for ever. Keep one free.
        quarantine = min(quarantine, bound - 1)
    held: deque[tuple[Any, Any, str]] = deque()  # the quarantine: (object, fingerprint at put, put site)
    held_lock = threading.Lock()

    def release(site: str) -> None:
        """The oldest object out of quarantine and into the pool, checked on its way out."""
        with held_lock:
            if not held:
                return
            obj, at_put, put_site = held.popleft()
        if checker.fingerprint(obj) != at_put:
            detail = f"{type(obj).__name__} changed after this put(), while in quarantine; found at {site}"
            checker.add("use-after-put", put_site, detail)
        inner_put(obj)
        checker.after_put(obj)

    def before_get(site: str) -> None:
        while len(held) >= quarantine > 0:
            release(site)
        if paranoid:
            checker.check_idle(site)

    def get(*args: Any, **kwargs: Any) -> Any:
        site = call_site(2, fallback_site)
        before_get(site)
        obj = inner_get(*args, **kwargs)
        checker.on_get(obj, site)
        checker.took(id(obj), 2)
        return obj

    async def get_async(*args: Any, **kwargs: Any) -> Any:
        # A pool that makes callers wait (AsyncBoundedPool): its get is awaited, and so is this.
        site = call_site(2, fallback_site)
        before_get(site)
        obj = await inner_get(*args, **kwargs)
        checker.on_get(obj, site)
        checker.took(id(obj), 2)
        return obj

    def put(obj: Any) -> None:
        site = call_site(2, fallback_site)
        if checker.on_put(obj, site):
            if quarantine > 0:
                with held_lock:
                    held.append((obj, checker.fingerprint(obj), site))
                return
            inner_put(obj)
        checker.after_put(obj)

    async def put_async(obj: Any) -> None:
        site = call_site(2, fallback_site)
        if checker.on_put(obj, site):
            await inner_put(obj)  # type: ignore[misc]
        checker.after_put(obj)

    def flush() -> None:
        while held:
            release("the end of the check")

    checker.flush = flush
    pool.get = get_async if inspect.iscoroutinefunction(inner_get) else get  # type: ignore[method-assign]
    pool.put = put_async if put_waits else put  # type: ignore[method-assign,assignment]


def _level(value: str) -> str | None:
    """The level ``POOLBENCH_CHECK`` names: ``1`` is paranoid, empty or ``0`` is off."""
    value = value.strip().lower()
    if value in ("", "0"):
        return None
    if value == "1":
        return "paranoid"
    if value not in LEVELS:
        print(f"poolbench check: unknown POOLBENCH_CHECK={value!r} (simple, advanced, paranoid): checking at "
              "paranoid", file=sys.stderr)  # fmt: skip
        return "paranoid"
    return value


def _held_seconds(value: str) -> float | None:
    if not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        print(f"poolbench check: POOLBENCH_CHECK_HELD={value!r} is not a positive number of seconds: "
              "held objects are not reported", file=sys.stderr)  # fmt: skip
        return None
    return seconds


def maybe_check(pool: Pool[Any]) -> None:
    """Called by every pool's constructor: checks it when ``POOLBENCH_CHECK`` names a level."""
    level = _level(os.environ.get("POOLBENCH_CHECK", ""))
    if level is not None:
        race = float(os.environ.get("POOLBENCH_CHECK_RACE", "0") or 0)
        held = _held_seconds(os.environ.get("POOLBENCH_CHECK_HELD", ""))
        checked(
            pool, level=level, race=race, held=held, name=f"{type(pool).__name__} created at {call_site(3)}"
        )
        _reported.append(pool.checker)  # type: ignore[attr-defined]
        _register_exit_report()


_registered = False


def _register_exit_report() -> None:
    global _registered
    if not _registered:
        atexit.register(_report_at_exit)
        _registered = True


def _report_at_exit() -> None:
    findings = [f for checker in _reported for f in checker.finish()]
    if findings:
        print(f"poolbench check: {len(findings)} finding(s)\n{format_findings(findings)}", file=sys.stderr)
    else:
        print(f"poolbench check: {len(_reported)} pool(s) checked, no misuse found", file=sys.stderr)
