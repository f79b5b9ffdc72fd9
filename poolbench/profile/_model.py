"""What a profile is made of: the target, its sites, the estimate, and the thresholds that judge
a site (see :mod:`poolbench.profile`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

SHORT = 16
"""An allocation freed within this many visits of its line is short-lived (``--short``)."""
MIN_COUNT = 100
"""A site visited fewer times with its typical size is not frequent enough to pool (``--min-count``)."""
SHORT_SHARE = 0.5
UNIFORM_SHARE = 0.8
ALIVE_SHARE = 0.1
MIN_SIZE = 128
"""Smaller objects (with what they own) come from pymalloc's free lists, and many are the
interpreter's own temporaries (bound methods, slices, ints) that no pool can hold: listed, not
candidates."""
BATCH_REUSE = 2
"""Objects freed in batches (a request's 1,000 records, a window of tasks) are not short-lived by
the ``short`` visits rule; a site whose objects are nearly all freed, with at most one in this many
of its visits alive at once, is a candidate too: a pool that size would serve each object this
many times."""
FREED_SHARE = 0.9
TEMPORARY_SHARE = 0.8
OWNED_SHARE = 0.8

NO_SITE = "(no frame of your code)"
FINISHED = "finished"


@dataclass(frozen=True)
class Target:
    """What to run: a script, a module (``-m``) or a scenario, with its arguments."""

    kind: str  # "script" | "module" | "scenario"
    name: str
    args: tuple[str, ...] = ()
    scenario: dict[str, Any] | None = None  # ScenarioRef.to_json()
    params: dict[str, Any] = field(default_factory=dict)
    pool: str = "none"
    ops: int = 5000
    source: str | None = None
    """A scenario's own file: the user's code even when installed in site-packages."""

    def describe(self) -> str:
        if self.kind == "module":
            return " ".join(["-m", self.name, *self.args])
        if self.kind == "scenario":
            extra = "".join(f" -p {k}={v}" for k, v in self.params.items())
            return f"scenario {self.name}{extra} --pool {self.pool} ({self.ops:,} ops)"
        return " ".join([self.name, *self.args])


@dataclass
class Site:
    site: str
    function: str
    allocations: int = 0
    bytes: int = 0
    short_lived: int = 0
    short_lived_bytes: int = 0
    alive_at_end: int = 0
    visits: int = 0
    """Passes of the program through the line that allocated (consecutive allocations of one
    line are one visit: ``bytearray(n)`` makes two, a database connection dozens)."""
    typical_size: int = 0
    """Bytes one visit allocates, the value that carries most of the site's bytes."""
    typical_count: int = 0
    uniformity: float = 0.0
    candidate: bool = False
    why: str = ""
    freed_in_visit_bytes: int = 0
    """Bytes freed before the visit that made them ended: temporaries of the line itself (a
    library's scratch space, a result thrown away at once), which nothing could hold in a pool."""
    peak_alive: int = 0
    """The most of the site's visits whose objects were alive at once: a pool that size would
    serve them."""
    owner: str | None = None
    """The site whose objects own this one's: its allocations are freed with theirs (a connection's
    statement cache, a task's payload list), so pooling those objects saves these too."""
    owned_bytes: int = 0
    owned_allocations: int = 0
    """What the sites this one owns allocated (see ``owner``)."""
    sizes: Counter[int] = field(default_factory=Counter, repr=False)  # bytes per visit -> visits
    alive: Counter[int] = field(default_factory=Counter, repr=False)  # visit -> its allocations alive
    owned_by: Counter[str] = field(default_factory=Counter, repr=False)  # owner site -> bytes freed with it

    @property
    def short_lived_share(self) -> float:
        """Of the site's bytes, the share freed soon. Bytes, not allocations: the structs of
        dicts, lists and floats go back to CPython's free lists, not to the allocator, so they
        never show as freed; their contents (a dict's keys, a list's items) do."""
        return self.short_lived_bytes / self.bytes if self.bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for private in ("sizes", "alive", "owned_by"):
            del data[private]
        data["short_lived_share"] = round(self.short_lived_share, 4)
        data["uniformity"] = round(self.uniformity, 4)
        return data


@dataclass
class Estimate:
    """What pooling the candidates shown would save per run: an estimate, not a measurement."""

    sites: int
    allocations: int
    bytes: int
    collections: int
    """Gen-0 collections avoided, at most: the run's gen-0 collections times the candidates'
    share of pymalloc's allocations (collections are driven by container objects only)."""


@dataclass
class Profile:
    target: str
    ended: str
    """How the program ended: "finished", "raised ValueError: ...", "stopped after the --timeout ..."."""
    seconds: float
    gc_collections: list[int]
    short: int
    sites: list[Site]
    estimate: Estimate
    left_running: int = 0
    """Processes the program started and left running when it ended (poolbench ended them)."""

    @property
    def ok(self) -> bool:
        return self.ended == FINISHED

    @property
    def allocations(self) -> int:
        return sum(s.allocations for s in self.sites)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.sites)

    def to_json(self, top: int | None = None) -> dict[str, Any]:
        shown = self.sites if top is None else self.sites[:top]
        return {
            "target": self.target,
            "ended": self.ended,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "allocations": self.allocations,
            "bytes": self.bytes,
            "gc_collections": self.gc_collections,
            "left_running": self.left_running,
            "short_lived_within": self.short,
            "estimate": asdict(self.estimate),
            "sites": [s.to_json() for s in shown],
        }


MAX_OPS = 10**9
"""The most operations ``doctor --ops`` and ``profile --ops`` take (a billion: hours of any scenario)."""
