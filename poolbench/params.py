"""Parsing scenario parameter values: ``-p size=64KiB,1MiB``, ``-p kind=dict``, ``-p batch=10``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import UsageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2, "mi": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "gi": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4, "ti": 1024**4,
}  # fmt: skip


MAX_INT = 1 << 62
"""The largest count or size a parameter takes: beyond it, no machine could hold the object."""


def parse_int(text: str) -> int:
    """An integer, with an optional size suffix: ``65536``, ``64KiB``, ``1MiB``, ``10k``."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a whole number or a size like 64KiB or 1MiB")
    number, unit = match.group(1), (match.group(2) or "").lower()
    if unit not in _UNITS:
        raise ValueError(f"{text!r}: unknown unit {match.group(2)!r} (use KiB, MiB, GiB, k, M)")
    if len(match.group(1)) > 30:
        raise ValueError(f"{text[:20]}... has more digits than any size or count needs")
    value = float(number) * _UNITS[unit]
    if not math.isfinite(value) or value > MAX_INT:
        raise ValueError(f"{text!r} is too large (at most {MAX_INT:,})")
    if value != int(value):
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def parse_value(text: str, default: Any) -> Any:
    """Parse ``text`` into the type of ``default`` (int with sizes, float, bool, str)."""
    if isinstance(default, bool):
        return parse_bool(text)
    if isinstance(default, int):
        return parse_int(text)
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return value
    return text.strip()


def split_assignments(items: Sequence[str]) -> dict[str, list[str]]:
    """``["size=1KiB,64KiB", "kind=dict"]`` → ``{"size": ["1KiB", "64KiB"], "kind": ["dict"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise UsageError(
                f"bad parameter {item!r}", hint="write -p KEY=VALUE or -p KEY=V1,V2 (e.g. -p size=64KiB)"
            )
        given = [v.strip() for v in values.split(",") if v.strip()]
        if not given:
            raise UsageError(
                f"-p {item}: no value for {key!r}", hint="e.g. -p size=64KiB or -p size=1KiB,64KiB"
            )
        grid.setdefault(key, []).extend(given)
    return grid


def resolve(
    scenario: str,
    defaults: Mapping[str, Any],
    choices: Mapping[str, Sequence[Any]],
    overrides: Mapping[str, str],
) -> dict[str, Any]:
    """Defaults updated with parsed ``overrides``; every bad value is a :class:`UsageError`."""
    params = dict(defaults)
    for key, text in overrides.items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise UsageError(
                f"scenario {scenario!r} has no parameter {key!r}", hint=f"its parameters: {known}"
            )
        try:
            value = parse_value(text, defaults[key])
        except ValueError as exc:
            raise UsageError(f"-p {key}={text} for {scenario!r}: {exc}") from None
        params[key] = value
    for key, allowed in choices.items():
        if key in params and params[key] not in allowed:
            options = "|".join(str(a) for a in allowed)
            raise UsageError(f"-p {key}={params[key]} for {scenario!r}: choose one of {options}")
    batch = params.get("batch", 1)
    if not isinstance(batch, int) or batch < 1:
        raise UsageError(f"-p batch={batch} for {scenario!r}: batch must be a whole number >= 1")
    for key, value in params.items():
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise UsageError(f"-p {key}={value} for {scenario!r}: must not be negative")
    return params


SIZE_PARAM = "max_size"
"""The cell parameter that holds a pool's size in a size sweep (``poolbench size``): the option
every pool that makes callers wait takes, mapped by each to its own terms."""


def format_params(params: Mapping[str, Any]) -> str:
    """``k=v;k=v`` in key order: the form CSV and cell labels use."""
    return ";".join(f"{k}={params[k]}" for k in sorted(params))
