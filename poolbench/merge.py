"""Combining shard files (``poolbench run --shard K/N``) into one result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .compare import ENV_KEYS
from .errors import ResultFileError, UsageError
from .result import Result


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``: the second of four shards."""
    k, sep, n = text.partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        shard = (0, 0)
    if not sep or not 1 <= shard[0] <= shard[1]:
        raise UsageError(f"bad --shard {text!r}", hint="write K/N with 1 <= K <= N, e.g. --shard 1/4")
    return shard


def shard_of(items: Sequence[object], shard: tuple[int, int]) -> list[int]:
    """The indexes shard K of N runs: every N-th, starting at K-1 (deterministic, balanced)."""
    k, n = shard
    return list(range(k - 1, len(items), n))


def merge_results(results: Sequence[tuple[Path, Result]]) -> Result:
    """One result holding every cell of ``results``; they must come from one environment."""
    if not results:
        raise UsageError("nothing to merge")
    first_path, first = results[0]
    merged = Result(
        metadata={**first.metadata, "merged_from": [str(p) for p, _ in results]},
        config={**first.config, "shard": None},
        complete=all(r.complete for _, r in results),
    )
    seen: dict[tuple[str, str, int, str], Path] = {}
    for path, result in results:
        for key in ENV_KEYS:
            if result.metadata.get(key) != first.metadata.get(key):
                raise ResultFileError(
                    f"{path} comes from another environment than {first_path} "
                    f"({key}: {result.metadata.get(key)} vs {first.metadata.get(key)})",
                    hint="merge shards run with the same Python, CPU and poolbench version",
                )
        if result.config.get("mode") != first.config.get("mode"):
            raise ResultFileError(
                f"{path} was run in mode {result.config.get('mode')}, {first_path} in {first.config.get('mode')}"
            )
        for cell in result.cells:
            if cell.key in seen:
                raise ResultFileError(f"{cell.label} is in both {seen[cell.key]} and {path}")
            seen[cell.key] = path
            merged.cells.append(cell)
    return merged
