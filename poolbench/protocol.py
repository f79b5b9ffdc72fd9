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

PROTOCOL_VERSION = 2
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
    count_allocs: bool = True
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
            "count_allocs": self.count_allocs,
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


Job = MeasureJob | DoctorJob


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
    return MeasureJob(
        scenario=scenario,
        params=dict(data["params"]),
        threads=int(data["threads"]),
        pools=tuple(data["pools"]),
        settings=Settings.from_json(data["settings"]),
        layout_seed=int(data["layout_seed"]),
        count_allocs=bool(data["count_allocs"]),
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
    gc: GcFigures
    hit_rate: float | None = None
    allocs: AllocFigures | None = None
    pool_stats: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StrategyFigures:
        allocs = data.get("allocs")
        return cls(
            loops=int(data["loops"]),
            reference_loops=int(data["reference_loops"]),
            warmups=[float(x) for x in data["warmups"]],
            values=[float(x) for x in data["values"]],
            reference=[float(x) for x in data["reference"]],
            latency=[float(x) for x in data["latency"]],
            gc=GcFigures(**data["gc"]),
            hit_rate=data.get("hit_rate"),
            allocs=AllocFigures(**allocs) if allocs else None,
            pool_stats=data.get("pool_stats"),
        )


@dataclass
class Answer:
    """A worker's answer: the figures of each strategy, a doctor's findings, or why there are none."""

    ok: bool
    pools: dict[str, StrategyFigures] = field(default_factory=dict)
    diagnosis: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    skip: str | None = None
    not_counted: str | None = None
    """Why allocations were not counted where they were asked for (memray missing, say)."""
    interpreter: dict[str, Any] = field(default_factory=dict)
    version: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "pools"}
        out["pools"] = {name: figures.to_json() for name, figures in self.pools.items()}
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
                diagnosis=data.get("diagnosis"),
                error=data.get("error"),
                traceback=data.get("traceback"),
                skip=data.get("skip"),
                not_counted=data.get("not_counted"),
                interpreter=data.get("interpreter") or {},
                version=str(data.get("version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed answer ({type(exc).__name__}: {exc})") from None
