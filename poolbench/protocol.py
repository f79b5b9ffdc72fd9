"""What the parent and a worker say to each other: one typed job and one typed answer, each with
``to_json``/``from_json``, used by ``runner`` (parent), ``worker`` and ``measure`` alike (pyperf's
precedent: one ``Run`` model both sides serialize). Versioned: a worker of another poolbench
version answers with an error instead of being misread.

A job goes to the worker as a JSON file on its stdin; the answer comes back as a JSON file the job
names (never on stdout, which a scenario may print to).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .fields import Fields
from .loading import ScenarioRef
from .result import AllocStats, GcStats, MemoryStats, Run
from .settings import Settings

PROTOCOL_VERSION = 4
REFERENCE = "reference"
"""The key of the reference workload's loops in a job's ``loops``, beside the strategies' names."""


class ProtocolError(Exception):
    """A job or an answer that does not fit this protocol (another poolbench version's, say)."""


@dataclass(frozen=True)
class MeasureJob:
    """Measure ``none`` and at most one pool of one group in one process."""

    scenario: ScenarioRef
    params: dict[str, Any]
    threads: int
    pools: tuple[str, ...]
    settings: Settings
    layout_seed: int
    detail: bool = True
    """Run the latency and GC/memory passes too."""
    loops: dict[str, int] | None = None
    """Operations per value pinned by the pair's first process (``reference`` included)."""
    memory_limit: int | None = None
    concurrency: int = 0
    """Tasks on one event loop (an async scenario's cell); 0: ``threads`` threads."""

    @property
    def members(self) -> int:
        """Threads, or the tasks of an async cell: how many share each pool."""
        return self.concurrency or self.threads

    @property
    def loop(self) -> str:
        """The event loop its async cells run on."""
        return self.settings.loop

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "job": "measure",
            "concurrency": self.concurrency,
            "scenario": self.scenario.to_json(),
            "params": self.params,
            "threads": self.threads,
            "pools": list(self.pools),
            "settings": self.settings.to_json(),
            "layout_seed": self.layout_seed,
            "detail": self.detail,
            "loops": self.loops,
            "memory_limit": self.memory_limit,
        }


@dataclass(frozen=True)
class DoctorJob:
    """Run one scenario under one checking pool (``poolbench doctor``)."""

    scenario: ScenarioRef
    pool: str
    ops: int
    race: float
    memory_limit: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "job": "doctor",
            "scenario": self.scenario.to_json(),
            "pool": self.pool,
            "ops": self.ops,
            "race": self.race,
            "memory_limit": self.memory_limit,
        }


@dataclass(frozen=True)
class CountJob:
    """Count the allocations of ``none`` and at most one pool of one group; nothing timed.

    A counting process of its own: counts are the same in every process (by construction,
    :mod:`poolbench.counting`), so a pair needs only a few, and nothing timed runs beside them,
    so the parent runs them side by side after the timed processes."""

    scenario: ScenarioRef
    params: dict[str, Any]
    threads: int
    pools: tuple[str, ...]
    count_ops: int
    layout_seed: int
    memory_limit: int | None = None
    concurrency: int = 0
    """As :attr:`MeasureJob.concurrency`."""
    loop: str = "asyncio"
    """As :attr:`Settings.loop`: counts are taken on the loop the timed processes ran on."""

    @property
    def members(self) -> int:
        return self.concurrency or self.threads

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "job": "count",
            "concurrency": self.concurrency,
            "scenario": self.scenario.to_json(),
            "params": self.params,
            "threads": self.threads,
            "pools": list(self.pools),
            "count_ops": self.count_ops,
            "layout_seed": self.layout_seed,
            "memory_limit": self.memory_limit,
            "loop": self.loop,
        }


Job = MeasureJob | DoctorJob | CountJob


def job_from_json(data: dict[str, Any]) -> Job:
    if data.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(
            f"job of protocol {data.get('protocol')!r}; this worker speaks {PROTOCOL_VERSION}"
        )
    scenario = ScenarioRef.from_json(data["scenario"])
    if data.get("job") == "doctor":
        return DoctorJob(
            scenario, str(data["pool"]), int(data["ops"]), float(data["race"]), data.get("memory_limit")
        )
    if data.get("job") == "count":
        return CountJob(
            scenario=scenario,
            params=dict(data["params"]),
            threads=int(data["threads"]),
            pools=tuple(data["pools"]),
            count_ops=int(data["count_ops"]),
            layout_seed=int(data["layout_seed"]),
            memory_limit=data.get("memory_limit"),
            concurrency=int(data.get("concurrency", 0)),
            loop=str(data.get("loop", "asyncio")),
        )
    return MeasureJob(
        scenario=scenario,
        params=dict(data["params"]),
        threads=int(data["threads"]),
        pools=tuple(data["pools"]),
        settings=Settings.from_json(data["settings"]),
        layout_seed=int(data["layout_seed"]),
        detail=bool(data.get("detail", True)),
        loops=data.get("loops"),
        memory_limit=data.get("memory_limit"),
        concurrency=int(data.get("concurrency", 0)),
    )


@dataclass
class StrategyFigures:
    """Everything one process measured of one strategy, in the result's own types: the parent adds
    what only it knows (the ratios to ``none``, the partner, the layout seed) to ``run``."""

    run: Run
    """The timed values, the loops, and the pool's hit rate and the memory of the GC pass."""
    latency: list[float] = field(default_factory=list)
    gc: GcStats | None = None
    """``None`` in a process that ran no GC pass (see ``MeasureJob.detail``)."""
    memory: MemoryStats | None = None
    """The GC pass's resident memory (as ``run.peak_rss_bytes``) and whether its peak was reset."""
    pool_stats: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run.to_json(),
            "latency": self.latency,
            "gc": self.gc.to_json() if self.gc else None,
            "memory": self.memory.to_json() if self.memory else None,
            "pool_stats": self.pool_stats,
        }

    @classmethod
    def from_json(cls, f: Fields, data: Any, at: str) -> StrategyFigures:
        gc = f.get(data, "gc", dict, at, optional=True)
        memory = f.get(data, "memory", dict, at, optional=True)
        return cls(
            run=Run.from_json(f, f.get(data, "run", dict, at), f"{at}.run"),
            latency=f.numbers(data, "latency", at),
            gc=GcStats.from_json(f, gc, f"{at}.gc") if gc is not None else None,
            memory=MemoryStats.from_json(f, memory, f"{at}.memory") if memory is not None else None,
            pool_stats=f.figures(data, "pool_stats", at),
        )


@dataclass
class Answer:
    """A worker's answer: the figures of each strategy, a doctor's findings, or why there are none."""

    ok: bool
    pools: dict[str, StrategyFigures] = field(default_factory=dict)
    counts: dict[str, AllocStats] = field(default_factory=dict)
    """A counting process's figures, by strategy (where memray counted)."""
    notes: dict[str, list[str]] = field(default_factory=dict)
    """What a reader of one strategy's counts must know (a harness subtraction that went below 0)."""
    diagnosis: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    skip: str | None = None
    not_counted: str | None = None
    """Why a counting process counted nothing (memray missing, say)."""
    interpreter: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    warnings: list[str] = field(default_factory=list)
    """What went wrong after the figures were taken (a ``teardown`` that raised or hung)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "ok": self.ok,
            "pools": {name: figures.to_json() for name, figures in self.pools.items()},
            "counts": {name: found.to_json() for name, found in self.counts.items()},
            "notes": {name: list(texts) for name, texts in self.notes.items()},
            "diagnosis": self.diagnosis,
            "error": self.error,
            "traceback": self.traceback,
            "skip": self.skip,
            "not_counted": self.not_counted,
            "interpreter": dict(self.interpreter),
            "version": self.version,
            "warnings": list(self.warnings),  # a copy: teardown may add to them after publishing
        }

    @classmethod
    def from_json(cls, data: Any) -> Answer:
        """A worker's answer, every field checked as a result file's are: a malformed one is a
        :class:`ProtocolError` naming the place."""

        def fail(where: str, what: str) -> ProtocolError:
            return ProtocolError(f"malformed answer: {where}: {what}")

        f = Fields(fail)
        if not isinstance(data, dict):
            raise fail("top level", "expected an object")
        if data.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(f"answer of protocol {data.get('protocol')!r}, expected {PROTOCOL_VERSION}")
        pools = f.get(data, "pools", dict, "answer", optional=True) or {}
        counts = f.get(data, "counts", dict, "answer", optional=True) or {}
        notes = f.get(data, "notes", dict, "answer", optional=True) or {}
        return cls(
            ok=f.get(data, "ok", bool, "answer"),
            pools={name: StrategyFigures.from_json(f, one, f"pools.{name}") for name, one in pools.items()},
            counts={name: AllocStats.from_json(f, one, f"counts.{name}") for name, one in counts.items()},
            notes={name: f.strings(notes, name, "notes") for name in notes},
            diagnosis=f.get(data, "diagnosis", dict, "answer", optional=True),
            error=f.get(data, "error", str, "answer", optional=True),
            traceback=f.get(data, "traceback", str, "answer", optional=True),
            skip=f.get(data, "skip", str, "answer", optional=True),
            not_counted=f.get(data, "not_counted", str, "answer", optional=True),
            interpreter=f.get(data, "interpreter", dict, "answer", optional=True) or {},
            version=f.get(data, "version", str, "answer", optional=True) or "",
            warnings=f.strings(data, "warnings", "answer"),
        )
