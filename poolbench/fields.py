"""Checked access to decoded JSON: the one place that says what a field of a result file or of a
worker's answer may hold.

Every complaint names the place (``cells[0].runs[0].values[2]: expected a finite number``): wrong
types, missing keys, NaN or infinities, negative or implausible values. The error it raises is the
reader's to choose: a :class:`~poolbench.errors.ResultFileError` naming the file for ``show``,
a :class:`~poolbench.protocol.ProtocolError` for a worker's answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

MAX_VALUE = 1e15
"""The largest time (ns: 11 days per operation), ratio or per-op figure a file may hold."""
MAX_COUNT = 1 << 62
MIN_POSITIVE = 1e-12
MAX_CONCURRENCY = 100_000
"""The most tasks one cell runs on its event loop (``--concurrency``)."""


class Fields:
    """Typed access to decoded JSON; ``fail(where, what)`` makes the error every complaint raises."""

    def __init__(self, fail: Callable[[str, str], Exception]) -> None:
        self.fail = fail

    def get(
        self, data: Any, key: str, kind: type | tuple[type, ...], where: str, *, optional: bool = False
    ) -> Any:
        if not isinstance(data, dict):
            raise self.fail(where, "expected an object")
        if key not in data:
            if optional:
                return None
            raise self.fail(where, f"missing {key!r}")
        value = data[key]
        if value is None and optional:
            return None
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise self.fail(f"{where}.{key}", "expected a number, found a boolean")
        if not isinstance(value, kind):
            raise self.fail(f"{where}.{key}", f"expected {_kind_name(kind)}, found {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{where}.{key}", "not a finite number")
        return value

    def numbers(self, data: Any, key: str, where: str, *, high: float = MAX_VALUE) -> list[float]:
        values = self.get(data, key, list, where)
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self.fail(f"{where}.{key}[{i}]", "expected a finite number")
            self.check_range(v, f"{where}.{key}[{i}]", high=high)
        return [float(v) for v in values]

    def check_range(self, value: float, where: str, *, high: float = MAX_VALUE) -> None:
        """No negative counts or times, nothing absurdly large or vanishingly small (a time of
        1e-320 ns or 1e308 ns is a corrupt file, and would break every figure computed from it)."""
        if value < 0:
            raise self.fail(where, f"must not be negative, found {value}")
        if value > high:
            raise self.fail(where, f"implausibly large ({value:g}; at most {high:g})")
        if 0 < value < MIN_POSITIVE:
            raise self.fail(where, f"implausibly small ({value:g})")

    def count(self, data: Any, key: str, where: str, *, optional: bool = False) -> Any:
        """A non-negative integer within range (or None when ``optional`` and absent)."""
        value = self.get(data, key, int, where, optional=optional)
        if value is not None:
            self.check_range(value, f"{where}.{key}", high=MAX_COUNT)
        return value

    def number(self, data: Any, key: str, where: str, *, optional: bool = False) -> Any:
        value = self.get(data, key, (int, float), where, optional=optional)
        if value is not None:
            self.check_range(value, f"{where}.{key}")
        return value

    def strings(self, data: Any, key: str, where: str) -> list[str]:
        """A list of strings (an empty one when absent)."""
        values = self.get(data, key, list, where, optional=True) or []
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise self.fail(f"{where}.{key}[{i}]", "expected a string")
        return list(values)

    def rates(self, data: Any, key: str, where: str) -> dict[str, float]:
        """An object of named rates (events per 1,000 operations): finite numbers within range,
        names that are strings of a few words; an empty object when absent."""
        found = self.get(data, key, dict, where, optional=True) or {}
        for name, value in found.items():
            at = f"{where}.{key}.{name}"
            if not name or len(name) > 40 or not name.isprintable():
                raise self.fail(at, "expected a short printable name")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(at, f"expected a number, found {type(value).__name__}")
            if not math.isfinite(value):
                raise self.fail(at, "not a finite number")
            self.check_range(value, at)
        return {name: float(value) for name, value in found.items()}

    def figures(self, data: Any, key: str, where: str) -> dict[str, Any] | None:
        """An object of named figures (a pool's statistics): numbers within range, or null, and a
        ``strategy`` string."""
        found: dict[str, Any] | None = self.get(data, key, dict, where, optional=True)
        for name, value in (found or {}).items():
            at = f"{where}.{key}.{name}"
            if name == "strategy":
                if not isinstance(value, str):
                    raise self.fail(at, "expected a string")
            elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise self.fail(at, f"expected a number, found {type(value).__name__}")
            elif value is not None:
                if not math.isfinite(value):
                    raise self.fail(at, "not a finite number")
                self.check_range(value, at, high=MAX_COUNT)
        return found


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
    }
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)
