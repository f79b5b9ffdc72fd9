"""Matching two results: what they say as a whole, and which cells are compared."""

from __future__ import annotations

from ..env import ENV_KEYS
from ..errors import ResultFileError
from ..result import Cell, Result
from ._model import Comparison


def context(base: Result, cand: Result, out: Comparison, *, allow_incomplete: bool,
             normalize: bool) -> tuple[bool, bool]:  # fmt: skip
    """What the comparison must say about the two files as a whole (machine, mode, completeness,
    interpreters). Whether each holds one interpreter, and whether time can be normalized."""
    for key in ENV_KEYS:
        b, c = base.metadata.get(key), cand.metadata.get(key)
        if b != c:
            out.env_differences.append((key, b, c))
    if base.config.get("mode") != cand.config.get("mode"):
        out.warnings.append(f"different modes: {base.config.get('mode')} vs {cand.config.get('mode')}")
    base_loop, cand_loop = base.config.get("loop", "asyncio"), cand.config.get("loop", "asyncio")
    if base_loop != cand_loop and any(c.concurrency for c in [*base.cells, *cand.cells]):
        out.warnings.append(
            f"different event loops ({base_loop} -> {cand_loop}): the async scenarios' cells compare "
            "the loops as much as the code"
        )
    if not base.complete:
        out.warnings.append("the base file is incomplete: only its finished cells are compared")
    if not cand.complete:
        if allow_incomplete:
            out.warnings.append("the candidate file is incomplete: only its finished cells are compared")
        else:
            out.incomplete = (
                "the candidate file is incomplete (an interrupted run, or one still going): "
                "the gate fails (--allow-incomplete compares its finished cells)"
            )
    single = len(base.pythons) == 1 and len(cand.pythons) == 1
    if single and base.pythons != cand.pythons:
        normalize = False
        out.warnings.append(
            f"different interpreters ({base.pythons[0]} -> {cand.pythons[0]}): cells matched across them, "
            "time compared in ns/op (not normalized: the reference workload changes with the interpreter)"
        )
    return single, normalize


def matched(base: Result, cand: Result, out: Comparison, *, single: bool,
             allow_missing: bool) -> list[tuple[Cell, Cell]]:  # fmt: skip
    """The (base, candidate) cells measured in both; the rest recorded in ``out`` as failed in the
    base, broken (failed or missing in the candidate) or only in one file."""

    def match_key(result: Result, cell: Cell) -> tuple[object, ...]:
        # The cell's key with its interpreter label replaced: files of one interpreter each are
        # matched across interpreters; files of several, by what each cell ran under.
        scenario, pool, threads, params, _python, concurrency = cell.key
        same = (scenario, pool, threads, params, concurrency)
        return same if single else (*same, result.python_of(cell))

    cand_cells = {match_key(cand, c): c for c in cand.cells}
    base_keys = {match_key(base, c) for c in base.cells}
    pairs: list[tuple[Cell, Cell]] = []
    for b in base.cells:
        c = cand_cells.get(match_key(base, b))
        if b.status != "ok":
            why = f"{b.status} in the base" + (f": {b.error}" if b.error else "")
            out.failed.append((b, why))
        elif c is None:
            if allow_missing:
                out.only_base.append(b)
            else:
                out.broken.append(
                    (b, "missing from the candidate (--allow-missing if the matrix was narrowed on purpose)")
                )
        elif c.status != "ok":
            why = f"{c.status} in the candidate" + (f": {c.error}" if c.error else "")
            out.broken.append((b, why))
        else:
            pairs.append((b, c))
    out.only_cand = [c for c in cand.cells if match_key(cand, c) not in base_keys]
    if not base_keys & set(cand_cells) and (cand_cells or not out.broken):
        raise ResultFileError(
            "nothing to compare: the two files have no measured cell in common",
            hint="compare results of the same scenarios, pools, threads and parameters",
        )
    return pairs
