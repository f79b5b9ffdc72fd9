"""Combining shard files (``poolbench run --shard K/N``) into one result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .env import ENV_KEYS
from .errors import ResultFileError, UsageError
from .result import Result


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
    seen: dict[tuple[str, str, int, str, str, int], Path] = {}
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
