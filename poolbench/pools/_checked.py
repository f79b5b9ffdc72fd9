"""Checking mode: find pool misuse (the doctor), at no cost to pools that are not checked.

``checked(pool)`` replaces the pool's ``get``/``put`` with checking versions that call the
originals; ``POOLBENCH_CHECK=1`` in the environment does it to every pool created in the process
and prints the findings to stderr at exit. Unchecked pools keep their fast ``get``/``put``.

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

A race mode (``race=0.25``) drops that fraction of puts at random, as Go's race detector does,
to expose code that assumes ``put`` then ``get`` returns the same object.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import random
import statistics
import sys
import threading
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._base import Pool, bound_of

HINTS = {
    "leak": "return every object you take: use `with pool.borrow() as obj:`, or put() in a finally block",
    "double-put": "put each object once; drop your reference after put() so it cannot be returned again",
    "foreign-put": "only put() objects this pool handed out (or create them through the pool's get())",
    "dirty-reuse": "reset objects before reuse: pass reset= to the pool (or define reset() in the scenario)",
    "use-after-put": "do not touch an object after put(); put() it only when you are done with it",
    "pinned-bytes": "drop oversized objects on put: accept=max_len(limit), as Go's fmt does above 64 KiB",
}
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TRACKED_IDLE = 1024
_PENDING = object()
_CHECKED_PER_GET = 16
QUARANTINE = 8
"""Objects a checking pool holds back after ``put``. 1 catches a write on the very next operation,
as in the examples; 8 also catches one a few operations later, for 8 objects of memory per pool."""


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


def site_of(function: Callable[..., Any]) -> str | None:
    """``file:line in name`` where ``function`` is defined, or None for a builtin."""
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    if code is None:
        return None
    return f"{code.co_filename}:{code.co_firstlineno} in {code.co_name}"


def fingerprint(obj: Any) -> Any:
    """The state a reused object is compared by: length and a contents checksum for buffers,
    lists and dicts, fields for dataclasses and slotted objects, ``__dict__`` otherwise."""
    if isinstance(obj, (bytearray, bytes, memoryview)):
        return (len(obj), zlib.crc32(obj))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, len(obj), tuple(_leaf(x) for x in obj))
    if isinstance(obj, dict):
        return ("dict", len(obj), tuple((k, _leaf(v)) for k, v in obj.items()))
    if dataclasses.is_dataclass(obj):
        return tuple((f.name, _leaf(getattr(obj, f.name, None))) for f in dataclasses.fields(obj))
    slots = [s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())]
    if slots:
        return tuple((s, _leaf(getattr(obj, s, None))) for s in slots)
    if hasattr(obj, "__dict__"):
        return tuple((k, _leaf(v)) for k, v in sorted(vars(obj).items()))
    return repr(obj)


def _leaf(value: Any) -> Any:
    if isinstance(value, (int, float, str, bool, type(None))):
        return value
    if isinstance(value, (bytearray, bytes)):
        return (len(value), zlib.crc32(value))
    if isinstance(value, (list, tuple, dict, set)):
        return (type(value).__name__, len(value), repr(value)[:200])
    return type(value).__name__


@dataclass
class Finding:
    kind: str
    site: str
    count: int = 1
    detail: str = ""

    @property
    def hint(self) -> str:
        return HINTS[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "site": self.site,
            "detail": self.detail,
            "hint": self.hint,
        }


@dataclass
class Checker:
    """The bookkeeping of one checked pool."""

    name: str
    fingerprint: Callable[[Any], Any] = fingerprint
    race: float = 0.0
    fallback_site: str | None = None
    """Where findings point when no frame of the user's code called ``get``/``put``."""
    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)
    out: dict[int, tuple[Any, str]] = field(default_factory=dict)
    idle: OrderedDict[int, tuple[Any, Any, str]] = field(default_factory=OrderedDict)
    """Objects put and not yet taken again: (object, fingerprint at put, put's call site)."""
    fresh: Any = None
    has_fresh: bool = False
    sizes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    flush: Callable[[], None] = lambda: None
    """Empties the quarantine into the pool, checking each object (set by :func:`checked`)."""

    def add(self, kind: str, site: str, detail: str = "") -> None:
        key = (kind, site)
        if key in self.findings:
            self.findings[key].count += 1
        else:
            self.findings[key] = Finding(kind, site, 1, detail)

    def on_get(self, obj: Any, site: str) -> None:
        key = id(obj)
        with self.lock:
            reused = self.idle.pop(key, None)  # (object, fingerprint, site) if it came back
            if reused is not None:
                if key in self.out:
                    self.add("double-put", site, "handed out while already out")
            elif not self.has_fresh:
                self.fresh, self.has_fresh = self.fingerprint(obj), True
            self.out[key] = (obj, site)
            if len(self.sizes) < 4096:
                self.sizes.append(sys.getsizeof(obj))
        if reused is not None and self.has_fresh and self.fingerprint(obj) != self.fresh:
            self.add("dirty-reuse", site, f"{type(obj).__name__} differs from a fresh one")

    def check_idle(self, site: str) -> None:
        """Before a get: has any object in the pool changed since it was put?"""
        with self.lock:
            # The most recent ones: LIFO pools hand those out next, and checking all would make
            # a get cost O(pool size).
            items = list(self.idle.items())[-_CHECKED_PER_GET:]
        for key, (obj, at_put, put_site) in items:
            if at_put is not _PENDING and self.fingerprint(obj) != at_put:
                self.add(
                    "use-after-put",
                    put_site,
                    f"{type(obj).__name__} changed after this put(), found at {site}",
                )
                with self.lock:
                    if key in self.idle:
                        self.idle[key] = (obj, self.fingerprint(obj), put_site)

    def on_put(self, obj: Any, site: str) -> bool:
        """Whether the put may go on to the pool."""
        key = id(obj)
        with self.lock:
            if key not in self.out:
                if key in self.idle:
                    self.add("double-put", site, "put twice without a get between")
                    return False
                self.add("foreign-put", site, f"a {type(obj).__name__} this pool never handed out")
            self.out.pop(key, None)
            self.idle[key] = (obj, _PENDING, site)
            while len(self.idle) > _TRACKED_IDLE:
                self.idle.popitem(last=False)
        return not (self.race and self.rng.random() < self.race)

    def after_put(self, obj: Any) -> None:
        """The state the object was left in by ``put`` (the pool's own put may change it, as
        SQLAlchemy's check-in does): what it must still be at the next ``get``."""
        key = id(obj)
        state = self.fingerprint(obj)
        with self.lock:
            entry = self.idle.get(key)
            if entry is not None and entry[0] is obj:
                self.idle[key] = (obj, state, entry[2])

    def finish(self) -> list[Finding]:
        """Leaks (objects still out) and pinned memory, then every finding so far."""
        self.flush()
        with self.lock:
            out = list(self.out.values())
            idle = [(obj, site) for obj, _, site in self.idle.values()]
        for _obj, site in out:
            self.add("leak", site, "taken and never returned")
        self.out.clear()
        if idle and self.sizes:
            typical = statistics.median(self.sizes)
            biggest, site = max(((sys.getsizeof(o), s) for o, s in idle), key=lambda pair: pair[0])
            retained = sum(sys.getsizeof(o) for o, _ in idle)
            if biggest > 8 * typical and biggest >= 64 * 1024:
                self.add("pinned-bytes", site,
                         f"the pool keeps a {biggest:,} B object put here; a typical one is {typical:,.0f} B "
                         f"({retained:,} B idle in all)")  # fmt: skip
        return list(self.findings.values())


_all: list[Checker] = []


def checked(
    pool: Pool[Any],
    *,
    fingerprint: Callable[[Any], Any] = fingerprint,
    race: float = 0.0,
    name: str | None = None,
    fallback_site: str | None = None,
    quarantine: int = QUARANTINE,
) -> Pool[Any]:
    """Make ``pool`` a checking pool, in place (it is returned for convenience).

    ``pool.checker`` then holds the :class:`Checker`; ``pool.checker.finish()`` returns findings.
    ``fallback_site`` is where findings point when no frame of the user's code is on the stack.

    ``quarantine``: objects put back wait in a FIFO of this many before the pool can hand them out
    again (AddressSanitizer's quarantine), fingerprinted when they enter and checked when they leave:
    a write through a reference kept after ``put`` lands while the object waits, and is found as
    ``use-after-put`` with the put's site and the site of the ``get`` that released it. Without it,
    a LIFO pool hands the object put last straight back, and the stale write lands while it is
    legitimately out again (reported, wrongly, as dirty reuse or not at all). It changes when
    objects are reused, never what the program computes; the pool makes more objects meanwhile.
    """
    checker = Checker(name or f"{type(pool).__name__} at {call_site(2)}", fingerprint, race, fallback_site)
    inner_get, inner_put = pool.get, pool.put
    bound = bound_of(pool)
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

    def get(*args: Any, **kwargs: Any) -> Any:
        site = call_site(2, fallback_site)
        while len(held) >= quarantine > 0:
            release(site)
        checker.check_idle(site)
        obj = inner_get(*args, **kwargs)
        checker.on_get(obj, site)
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

    def flush() -> None:
        while held:
            release("the end of the check")

    checker.flush = flush

    pool.get = get  # type: ignore[method-assign]
    pool.put = put  # type: ignore[method-assign]
    pool.checker = checker  # type: ignore[attr-defined]
    _all.append(checker)
    return pool


def maybe_check(pool: Pool[Any]) -> None:
    """Called by every pool's constructor: checks it when ``POOLBENCH_CHECK=1``."""
    if os.environ.get("POOLBENCH_CHECK") == "1":
        race = float(os.environ.get("POOLBENCH_CHECK_RACE", "0") or 0)
        checked(pool, race=race, name=f"{type(pool).__name__} created at {call_site(3)}")
        _register_exit_report()


_registered = False


def _register_exit_report() -> None:
    global _registered
    if not _registered:
        atexit.register(_report_at_exit)
        _registered = True


def format_findings(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"  {f.kind} x{f.count} at {f.site}" + (f": {f.detail}" if f.detail else ""))
        lines.append(f"    fix: {f.hint}")
    return "\n".join(lines)


def _report_at_exit() -> None:
    findings = [f for checker in _all for f in checker.finish()]
    if findings:
        print(f"poolbench check: {len(findings)} finding(s)\n{format_findings(findings)}", file=sys.stderr)
    else:
        print(f"poolbench check: {len(_all)} pool(s) checked, no misuse found", file=sys.stderr)
