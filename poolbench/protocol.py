"""What the parent and a worker say to each other: one typed job and one typed answer, each with
``to_json``/``from_json``, used by ``runner`` (parent), ``worker`` and ``measure`` alike (pyperf's
precedent: one ``Run`` model both sides serialize). Versioned: a worker of another poolbench
version answers with an error instead of being misread.

A job goes to the worker as a JSON file on its stdin; the answer comes back as a JSON file the job
names (never on stdout, which a scenario may print to).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .discovery import ScenarioRef
from .settings import Settings

PROTOCOL_VERSION = 3
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

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "job": "measure",
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

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "job": "count",
            "scenario": self.scenario.to_json(),
            "params": self.params,
            "threads": self.threads,
            "pools": list(self.pools),
            "count_ops": self.count_ops,
            "layout_seed": self.layout_seed,
            "memory_limit": self.memory_limit,
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
    )


@dataclass
class GcFigures:
    """The GC and memory pass of one strategy in one process."""

    ops: int
    collections: list[int]
    pause_total_ns: int
    pause_max_ns: int
    peak_bytes: int
    added_bytes: int
    peak_reset: bool


@dataclass
class AllocFigures:
    """The counting pass of one strategy in one process."""

    ops: int
    allocations: int
    bytes: int
    peak_bytes: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class StrategyFigures:
    """Everything one process measured of one strategy."""

    loops: int
    reference_loops: int
    warmups: list[float]
    values: list[float]
    reference: list[float]
    latency: list[float]
    gc: GcFigures | None
    """``None`` in a process that ran no GC pass (see ``MeasureJob.detail``)."""
    hit_rate: float | None = None
    pool_stats: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StrategyFigures:
        return cls(
            loops=int(data["loops"]),
            reference_loops=int(data["reference_loops"]),
            warmups=[float(x) for x in data["warmups"]],
            values=[float(x) for x in data["values"]],
            reference=[float(x) for x in data["reference"]],
            latency=[float(x) for x in data["latency"]],
            gc=GcFigures(**data["gc"]) if data.get("gc") else None,
            hit_rate=data.get("hit_rate"),
            pool_stats=data.get("pool_stats"),
        )


@dataclass
class Answer:
    """A worker's answer: the figures of each strategy, a doctor's findings, or why there are none."""

    ok: bool
    pools: dict[str, StrategyFigures] = field(default_factory=dict)
    counts: dict[str, AllocFigures] = field(default_factory=dict)
    """A counting process's figures, by strategy (where memray counted)."""
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
        out = {k: v for k, v in asdict(self).items() if k not in ("pools", "counts")}
        out["pools"] = {name: figures.to_json() for name, figures in self.pools.items()}
        out["counts"] = {name: asdict(figures) for name, figures in self.counts.items()}
        out["protocol"] = PROTOCOL_VERSION
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answer:
        if data.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(f"answer of protocol {data.get('protocol')!r}, expected {PROTOCOL_VERSION}")
        try:
            return cls(
                ok=bool(data["ok"]),
                pools={name: StrategyFigures.from_json(f) for name, f in (data.get("pools") or {}).items()},
                counts={name: AllocFigures(**f) for name, f in (data.get("counts") or {}).items()},
                diagnosis=data.get("diagnosis"),
                error=data.get("error"),
                traceback=data.get("traceback"),
                skip=data.get("skip"),
                not_counted=data.get("not_counted"),
                interpreter=data.get("interpreter") or {},
                version=str(data.get("version", "")),
                warnings=[str(w) for w in data.get("warnings") or []],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed answer ({type(exc).__name__}: {exc})") from None
