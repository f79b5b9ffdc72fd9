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
import dataclasses
import functools
import os
import random
import statistics
import sys
import threading
import time
import weakref
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
    "held-too-long": "return borrowed objects as soon as the work is done; a connection held across slow "
    "work starves every other caller (take it inside `with pool.borrow()` around the work only)",
}
LEVELS = ("simple", "advanced", "paranoid")
SAMPLE_PERIOD = 0.01
"""Seconds between level simple's samples: one object watched for one round trip (put, get,
put) at a time, the next one armed this long after the last one came back."""
RECENT = 4
"""Access sites kept per object at levels advanced and paranoid (a finding shows them)."""
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


_default_fingerprint = fingerprint


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
        """``site`` as ``file:line`` and the ``function`` apart (None where the site has none)."""
        where, sep, function = self.site.rpartition(" in ")
        return {
            "kind": self.kind,
            "count": self.count,
            "site": where if sep else self.site,
            "function": function if sep else None,
            "detail": self.detail,
            "hint": self.hint,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        site = str(data["site"]) + (f" in {data['function']}" if data.get("function") else "")
        return cls(str(data["kind"]), site, int(data["count"]), str(data.get("detail", "")))


@dataclass(eq=False)
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
    level: str = "paranoid"
    held: float | None = None
    """Seconds an object may be out before it is reported as held too long (None: never)."""
    taken: dict[int, tuple[float, tuple[str, ...]]] = field(default_factory=dict)
    """When each object out was taken, and the stack that took it (only with ``held``)."""
    reported: set[int] = field(default_factory=set)
    recent: OrderedDict[int, deque[str]] = field(default_factory=OrderedDict)
    """The last :data:`RECENT` gets and puts of each object (levels advanced and paranoid)."""

    def add(self, kind: str, site: str, detail: str = "") -> None:
        key = (kind, site)
        if key in self.findings:
            self.findings[key].count += 1
        else:
            self.findings[key] = Finding(kind, site, 1, detail)

    def touch(self, key: int, what: str) -> None:
        """Record an access site of the object ``key`` (call with the lock held)."""
        sites = self.recent.get(key)
        if sites is None:
            sites = self.recent[key] = deque(maxlen=RECENT)
            while len(self.recent) > 2 * _TRACKED_IDLE:
                self.recent.popitem(last=False)
        sites.append(what)

    def history(self, key: int) -> str:
        sites = self.recent.get(key)
        return f"; recent: {', '.join(sites)}" if sites else ""

    def took(self, key: int, depth: int) -> None:
        """An object was taken: when, and by which stack (for the held-too-long watchdog)."""
        if self.held is not None:
            self.taken[key] = (time.monotonic(), stack_of(depth + 1))

    def check_held(self, now: float) -> list[Finding]:
        """Objects out longer than ``held`` not reported yet: reported now, once each."""
        if self.held is None:
            return []
        found = []
        with self.lock:
            late = [(k, t, stack) for k, (t, stack) in self.taken.items()
                    if now - t > self.held and k not in self.reported]  # fmt: skip
            for key, t, stack in late:
                self.reported.add(key)
                site = stack[0] if stack else self.fallback_site or "?"
                detail = f"out for {now - t:.1f} s (threshold {self.held:g} s); taken by: " + " <- ".join(
                    stack
                )
                self.add("held-too-long", site, detail)
                found.append(Finding("held-too-long", site, 1, detail))
        return found

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
            self.touch(key, f"get at {site}")
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
                    first = self.idle[key][2]
                    self.add("double-put", site, f"put twice without a get between; first put at {first}")
                    return False
                self.add("foreign-put", site, f"a {type(obj).__name__} this pool never handed out")
            self.out.pop(key, None)
            self.taken.pop(key, None)
            self.reported.discard(key)
            self.touch(key, f"put at {site}")
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
        for obj, site in out:
            self.add("leak", site, "taken and never returned" + self.history(id(obj)))
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


_all: weakref.WeakSet[Checker] = weakref.WeakSet()
"""Every live checker (the watchdog's); a checker lives as long as its pool."""
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
    if fingerprint is _default_fingerprint and callable(getattr(pool, "fingerprint", None)):
        fingerprint = pool.fingerprint  # type: ignore[attr-defined]  # a pool that knows its objects
    checker = Checker(name or f"{type(pool).__name__} at {call_site(2)}", fingerprint, race, fallback_site,
                      level=level, held=held)  # fmt: skip
    if level == "simple":
        _sample(pool, checker)
    else:
        _check_all(
            pool, checker, QUARANTINE if quarantine is None and level == "paranoid" else quarantine or 0
        )
    pool.checker = checker  # type: ignore[attr-defined]
    _all.add(checker)
    if held is not None:
        _start_watchdog(held)
    return pool


def _check_all(pool: Pool[Any], checker: Checker, quarantine: int) -> None:
    """Levels advanced and paranoid: every get and put checked, through wrappers."""
    fallback_site = checker.fallback_site
    paranoid = checker.level == "paranoid"
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
        if paranoid:
            checker.check_idle(site)
        obj = inner_get(*args, **kwargs)
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

    def flush() -> None:
        while held:
            release("the end of the check")

    checker.flush = flush
    pool.get = get  # type: ignore[method-assign]
    pool.put = put  # type: ignore[method-assign]


class _Sampler:
    """Level simple's state: at most one object watched, and the swappable parts of get/put.

    Unwatched, ``get`` is the pool's own fast path and ``put`` one call around the pool's; the
    checking versions are swapped in through the functions' default arguments (``__defaults__``,
    read at each call) only while an object is watched, and the watchdog thread arms the next
    sample every :data:`SAMPLE_PERIOD` seconds. So a cached ``get``/``put`` pays nothing for
    the objects that are not watched.
    """

    def __init__(self, checker: Checker, put: Any, inner_put: Any) -> None:
        self.checker = checker
        self.put = put
        self.inner_put = inner_put
        self.set_get: Callable[[bool], None] = lambda watching: None
        """Switches ``get`` to its watching version and back (set by :func:`_sample`)."""
        self.obj: Any = None
        self.out = False
        self.at_put: Any = None
        self.get_site = self.put_site = ""
        self.armed = False
        self.next_arm = 0.0

    def arm(self) -> None:
        """The next object put is watched."""
        with self.checker.lock:
            if self.obj is None and not self.armed:
                self.armed = True
                self.put.__defaults__ = (self.first_put,)

    def first_put(self, obj: Any) -> None:
        """The armed put: start watching ``obj``."""
        checker = self.checker
        site = call_site(3, checker.fallback_site)
        with checker.lock:
            if not self.armed:
                self.inner_put(obj)
                return
            self.armed = False
            self.obj, self.out, self.put_site = obj, False, site
        self.inner_put(obj)
        self.at_put = checker.fingerprint(obj)
        self.set_get(True)
        self.put.__defaults__ = (self.watching_put,)

    def seen(self, obj: Any) -> None:
        """The watched object is handed out again: changed while idle, or reused dirty?"""
        checker = self.checker
        site = call_site(4, checker.fallback_site)
        state = checker.fingerprint(obj)
        with checker.lock:
            if obj is not self.obj:
                return
            if self.out:
                checker.add("double-put", self.put_site, f"handed out twice: again at {site} (sampled)")
                return
            self.out, self.get_site = True, site
        if state != self.at_put:
            checker.add("use-after-put", self.put_site,
                        f"{type(obj).__name__} changed after this put(), found at {site} (sampled)")  # fmt: skip
        elif checker.has_fresh and state != checker.fresh:
            checker.add("dirty-reuse", site, f"{type(obj).__name__} differs from a fresh one (sampled)")
        checker.took(id(obj), 3)

    def watching_put(self, obj: Any) -> None:
        if obj is not self.obj:
            self.inner_put(obj)
            return
        checker = self.checker
        site = call_site(3, checker.fallback_site)
        with checker.lock:
            if not self.out:
                checker.add(
                    "double-put",
                    site,
                    f"put twice without a get between; first put at {self.put_site} (sampled)",
                )
                return  # not passed on: the pool would hand it to two borrowers
            checker.taken.pop(id(obj), None)
            self.obj, self.out = None, False  # one round trip watched
            self.set_get(False)
            self.put.__defaults__ = (self.inner_put,)
            self.next_arm = time.monotonic() + SAMPLE_PERIOD
        self.inner_put(obj)

    def finish(self) -> None:
        obj, self.obj = self.obj, None
        self.set_get(False)
        self.put.__defaults__ = (self.inner_put,)
        if obj is None:
            return
        if self.out:
            self.checker.add("leak", self.get_site, "taken and never returned (sampled)")
        elif self.checker.fingerprint(obj) != self.at_put:
            self.checker.add("use-after-put", self.put_site,
                             f"{type(obj).__name__} changed after this put() (sampled)")  # fmt: skip

    def tick(self, now: float) -> None:
        """From the watchdog thread: arm the next sample when the period has passed."""
        if self.obj is None and not self.armed and now >= self.next_arm:
            self.arm()


_samplers: weakref.WeakSet[_Sampler] = weakref.WeakSet()


def _sample(pool: Pool[Any], checker: Checker) -> None:
    """Level simple (see :class:`_Sampler`). The fresh fingerprint comes from the objects the pool
    makes (its slow path), so it is never taken from a reused, dirty one."""
    inner_get, inner_put = pool.get, pool.put
    parts = getattr(inner_get, "fast_parts", None)

    def put(obj: Any, _put: Any = inner_put) -> None:
        _put(obj)

    sampler = _Sampler(checker, put, inner_put)

    def fresh(obj: Any) -> Any:
        if not checker.has_fresh:
            checker.fresh, checker.has_fresh = checker.fingerprint(obj), True
        return obj

    get: Callable[..., Any]
    if parts is not None:
        items, slow, reset = parts
        pop = items.pop

        def watching_pop() -> Any:
            obj = pop()
            if obj is sampler.obj:
                sampler.seen(obj)
            return obj

        def new() -> Any:
            return fresh(slow())

        if reset is None:

            def fast_get(pop: Any = pop, slow: Any = new) -> Any:
                try:
                    return pop()
                except IndexError:
                    return slow()

            get = fast_get
        else:

            def fast_get_reset(pop: Any = pop, slow: Any = new, reset: Any = reset) -> Any:
                try:
                    obj = pop()
                except IndexError:
                    return slow()
                reset(obj)
                return obj

            get = fast_get_reset
        defaults = get.__defaults__ or ()

        def set_fast(watching: bool) -> None:
            get.__defaults__ = ((watching_pop if watching else pop), *defaults[1:])

        sampler.set_get = set_fast
    else:
        made = [False]

        def watching_get(*args: Any, **kwargs: Any) -> Any:
            obj = inner_get(*args, **kwargs)
            if obj is sampler.obj:
                sampler.seen(obj)
            return obj

        def first_get(*args: Any, **kwargs: Any) -> Any:
            obj = fresh(inner_get(*args, **kwargs))
            made[0] = True
            set_any(sampler.obj is not None)
            return obj

        def any_get(*args: Any, _get: Any = first_get, **kwargs: Any) -> Any:
            return _get(*args, **kwargs)

        def set_any(watching: bool) -> None:
            if made[0]:
                any_get.__kwdefaults__ = {"_get": watching_get if watching else inner_get}

        get = any_get
        sampler.set_get = set_any
    checker.flush = sampler.finish
    sampler.arm()  # the first object put is watched
    _samplers.add(sampler)
    _start_watchdog(None)
    pool.get = get  # type: ignore[method-assign]
    pool.put = put  # type: ignore[method-assign]


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


_watchdog: threading.Thread | None = None
_watchdog_lock = threading.Lock()
_watchdog_every = [SAMPLE_PERIOD]


def _start_watchdog(held: float | None) -> None:
    """One daemon thread for the process (:func:`_watch`), started when a checker needs it."""
    global _watchdog
    if held is not None:
        _watchdog_every[0] = min(_watchdog_every[0], held / 2)
    with _watchdog_lock:
        if _watchdog is None:
            _watchdog = threading.Thread(target=_watch, name="poolbench-check-watchdog", daemon=True)
            _watchdog.start()


def _watch() -> None:
    """Arm level simple's next sample, and report on stderr every checker's objects out longer
    than their ``held`` threshold, once each, while the program runs (waking twice per shortest
    threshold). Ends when every checked pool that needs it is gone."""
    global _watchdog
    while True:
        time.sleep(_watchdog_every[0])
        now = time.monotonic()
        samplers, checkers = list(_samplers), [c for c in list(_all) if c.held is not None]
        if not samplers and not checkers:
            with _watchdog_lock:
                if not _samplers and not any(c.held is not None for c in list(_all)):
                    _watchdog = None
                    return
        sampler = checker = None
        for sampler in samplers:
            sampler.tick(now)
        for checker in checkers:
            for f in checker.check_held(now):
                print(f"poolbench check: held-too-long in {checker.name} at {f.site}: {f.detail}\n"
                      f"    fix: {f.hint}", file=sys.stderr, flush=True)  # fmt: skip
        # No reference may outlive the loop: a sleeping watchdog must not keep a pool alive.
        del samplers, checkers, sampler, checker


def _restart_in_child() -> None:
    """A forked child has no watchdog thread (threads do not survive ``fork``): start its own."""
    global _watchdog
    _watchdog = None
    if _samplers or any(c.held is not None for c in _all):
        _start_watchdog(None)


os.register_at_fork(after_in_child=_restart_in_child)


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


def format_findings(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"  {f.kind} x{f.count} at {f.site}" + (f": {f.detail}" if f.detail else ""))
        lines.append(f"    fix: {f.hint}")
    return "\n".join(lines)


def _report_at_exit() -> None:
    findings = [f for checker in _reported for f in checker.finish()]
    if findings:
        print(f"poolbench check: {len(findings)} finding(s)\n{format_findings(findings)}", file=sys.stderr)
    else:
        print(f"poolbench check: {len(_reported)} pool(s) checked, no misuse found", file=sys.stderr)
