"""A temporary record of ~10 fields with a nested list, filled and serialized to JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from poolbench import Scenario

_TAGS = 5


@dataclass(slots=True)
class Record:
    id: int = 0
    user: str = ""
    email: str = ""
    active: bool = False
    score: float = 0.0
    visits: int = 0
    plan: str = ""
    country: str = ""
    referrer: str | None = None
    tags: list[int] = field(default_factory=lambda: [0] * _TAGS)


_BLANK = {f: getattr(Record(), f) for f in Record.__dataclass_fields__ if f != "tags"}


def _as_dict(record: Record) -> dict[str, Any]:
    return {f: getattr(record, f) for f in Record.__slots__}


class JsonStruct(Scenario):
    """Fill a temporary record and serialize it; `batch` records are alive at once."""

    name = "json-struct"
    description = "fill a 10-field record with a nested list, serialize it (batch alive at once)"
    params = {"batch": 1000, "kind": "dict", "encoder": "json"}
    choices = {"kind": ("dict", "dataclass"), "encoder": ("json", "orjson")}

    def setup(self) -> None:
        self.dumps = self._encoder()
        self.serial = 0
        self.tags = list(range(_TAGS))
        if self.params["kind"] == "dataclass":
            self.new = Record  # type: ignore[method-assign]
            self.use = self._use_record  # type: ignore[method-assign]
            self.reset = self._reset_record  # type: ignore[method-assign]

    def _encoder(self) -> Callable[[Any], Any]:
        if self.params["encoder"] == "orjson":
            try:
                import orjson
            except ImportError:
                raise RuntimeError("encoder=orjson needs orjson: pip install orjson") from None
            return orjson.dumps  # type: ignore[no-any-return]
        if self.params["kind"] == "dataclass":
            return lambda record: json.dumps(record, default=_as_dict)
        return json.dumps

    def new(self) -> dict[str, Any]:
        return {**_BLANK, "tags": [0] * _TAGS}

    def reset(self, record: dict[str, Any]) -> None:
        tags = record["tags"]
        record.update(_BLANK)
        tags[:] = (0,) * _TAGS

    def use(self, record: dict[str, Any]) -> None:
        self.serial = n = self.serial + 1
        record["id"] = n
        record["user"] = "ada"
        record["email"] = "ada@example.org"
        record["active"] = True
        record["score"] = 0.5
        record["visits"] = 7
        record["plan"] = "pro"
        record["country"] = "NL"
        record["referrer"] = None
        record["tags"][:] = self.tags
        self.dumps(record)

    def _use_record(self, record: Record) -> None:
        self.serial = n = self.serial + 1
        record.id = n
        record.user = "ada"
        record.email = "ada@example.org"
        record.active = True
        record.score = 0.5
        record.visits = 7
        record.plan = "pro"
        record.country = "NL"
        record.referrer = None
        record.tags[:] = self.tags
        self.dumps(record)

    def _reset_record(self, record: Record) -> None:
        for name, value in _BLANK.items():
            setattr(record, name, value)
        record.tags[:] = (0,) * _TAGS
