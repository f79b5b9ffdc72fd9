"""A checked pool's bookkeeping (:class:`Checker`) and what it finds (:class:`Finding`): the
objects out and idle, their fingerprints and recent call sites, and the kinds of misuse, each with
its fix. The wrappers that feed it are :mod:`._checked` (every object) and :mod:`._sampler` (one
object at a time)."""

from __future__ import annotations

import dataclasses
import random
import statistics
import sys
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..callsites import stack_of

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
RECENT = 4
"""Access sites kept per object at levels advanced and paranoid (a finding shows them)."""
_TRACKED_IDLE = 1024
PENDING = object()
_CHECKED_PER_GET = 16


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


DEFAULT_FINGERPRINT = fingerprint


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
            if at_put is not PENDING and self.fingerprint(obj) != at_put:
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
            self.idle[key] = (obj, PENDING, site)
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


def format_findings(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"  {f.kind} x{f.count} at {f.site}" + (f": {f.detail}" if f.detail else ""))
        lines.append(f"    fix: {f.hint}")
    return "\n".join(lines)
