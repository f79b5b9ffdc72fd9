"""Reading the recording, in poolbench's process: every allocation charged to its site, lifetimes
counted in visits, and each site judged (see :mod:`poolbench.profile`)."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..callsites import user_code
from ._model import (
    ALIVE_SHARE,
    BATCH_REUSE,
    FREED_SHARE,
    MIN_COUNT,
    MIN_SIZE,
    NO_SITE,
    OWNED_SHARE,
    SHORT,
    SHORT_SHARE,
    TEMPORARY_SHARE,
    UNIFORM_SHARE,
    Estimate,
    Profile,
    Site,
)


def analyze(
    capture: Path,
    target: str,
    ended: str,
    seconds: float,
    gc_collections: Sequence[int],
    short: int = SHORT,
    user_files: frozenset[str] = frozenset(),
    *,
    min_count: int = MIN_COUNT,
) -> Profile:
    """Charge every allocation of ``capture`` to its site and rank the sites."""
    import memray

    from ..counting import ALLOCATING

    kinds = memray.AllocatorType
    frees = {kinds.FREE, kinds.PYMALLOC_FREE}
    allocs = {getattr(kinds, name) for name in ALLOCATING}
    charges = _Charges(
        short, user_files, {kinds.PYMALLOC_MALLOC, kinds.PYMALLOC_CALLOC, kinds.PYMALLOC_REALLOC}
    )
    # An allocation is accounted one record late: if the next one is a call made from the same
    # line, it may have been the callee's frame, which memray's own hook made (module docstring).
    frame_sizes: dict[tuple[str, str], Counter[int]] = {}  # callee (function, file) -> sizes seen
    pending: tuple[Site, int, int, Any, int, tuple[Any, ...]] | None = None
    reader = memray.FileReader(str(capture))
    for record in reader.get_allocation_records():
        kind = record.allocator
        if kind in frees:
            if pending is not None and pending[2] == record.address:
                charges.account(*pending[:4])
                pending = None
            entry = charges.live.pop(record.address, None)
            if entry is not None:
                charges.freed(entry)
            continue
        if kind not in allocs:
            continue  # mmap/munmap: arenas that pymalloc's own records already cover
        site, stack = charges.site_for(record)
        if pending is not None:
            if not _is_frame(pending, record.tid, stack, frame_sizes, kinds):
                charges.account(*pending[:4])
            elif charges.user(stack[len(stack) - len(pending[5]) - 1][1]):
                charges.close_visit()  # a call into the user's code: the calling line's visit is over
        pending = (site, record.size, record.address, kind, record.tid, stack)
    if pending is not None:
        charges.account(*pending[:4])
    charges.close_visit()
    for record in reader.get_leaked_allocation_records(merge_threads=True):
        if record.allocator in allocs:
            charges.site_for(record)[0].alive_at_end += record.n_allocations
    reader.close()
    sites = {key: site for key, site in charges.sites.items() if site.allocations}
    _owners(sites)

    for site in sites.values():
        _judge(site, short, min_count)
    ranked = sorted(sites.values(), key=lambda s: (not s.candidate, -(s.bytes + s.owned_bytes), s.site))
    return Profile(
        target=target,
        ended=ended,
        seconds=seconds,
        gc_collections=list(gc_collections),
        short=short,
        sites=ranked,
        estimate=_estimate(ranked, gc_collections, charges.pymalloc_by_site),
    )


class _Charges:
    """The accounting of one recording: each allocation charged to its site, the blocks still
    alive, and the visit in progress (one pass of the program through a line)."""

    def __init__(self, short: int, user_files: frozenset[str], pymalloc: set[Any]) -> None:
        self.short = short
        self.user_files = user_files
        self.pymalloc = pymalloc
        self.stacks: dict[int, tuple[Site, tuple[Any, ...]]] = {}
        self.sites: dict[str, Site] = {}
        # address -> its site, the visit, its size, visit serial
        self.live: dict[int, tuple[Site, int, int, int]] = {}
        self.pymalloc_by_site: Counter[str] = Counter()
        self.visiting: Site | None = None  # the site of the last allocation, and what its visit made
        self.visit_bytes = 0
        self.serial = 0  # of the visit in progress (every visit of every site)
        self.burst: list[tuple[Site, int]] = []  # frees since the last allocation, not yet claimed

    def user(self, filename: str) -> bool:
        return user_code(filename) or os.path.realpath(filename) in self.user_files

    def site_for(self, record: Any) -> tuple[Site, tuple[Any, ...]]:
        """The record's site, and its Python stack (innermost frame first)."""
        key = record.stack_id
        found = self.stacks.get(key)
        if found is None:
            stack = tuple(record.stack_trace())
            where, function = next(
                ((f"{filename}:{line}", name) for name, filename, line in stack if self.user(filename)),
                (NO_SITE, ""),
            )
            site = self.sites.get(where)
            if site is None:
                site = self.sites[where] = Site(where, function)
            found = self.stacks[key] = (site, stack)
        return found

    def close_visit(self) -> None:
        if self.visiting is not None:
            self.visiting.sizes[self.visit_bytes] += 1
            self.visiting = None
            self.serial += 1

    def account(self, site: Site, size: int, address: int, kind: Any) -> None:
        self.burst.clear()
        if site is not self.visiting:
            # A visit: one pass of the program through the line, every allocation it made.
            self.close_visit()
            self.visiting, self.visit_bytes = site, 0
            site.visits += 1
        self.visit_bytes += size
        site.allocations += 1
        site.bytes += size
        if kind in self.pymalloc:
            self.pymalloc_by_site[site.site] += 1
        previous = self.live.get(address)
        if previous is not None:
            self.freed(previous)  # grown in place: the old block's life ended here
        self.live[address] = (site, site.visits, size, self.serial)
        site.alive[site.visits] += 1
        site.peak_alive = max(site.peak_alive, len(site.alive))

    def freed(self, entry: tuple[Site, int, int, int]) -> None:
        site, visit, size, made_in = entry
        site.alive[visit] -= 1
        if not site.alive[visit]:
            del site.alive[visit]
        if site.visits - visit <= self.short:
            site.short_lived += 1
            site.short_lived_bytes += size
        if made_in == self.serial and self.visiting is site:
            site.freed_in_visit_bytes += size
            return
        # Frees come in bursts as an object is torn down: its members first, the object last.
        # The first free of another site's object claims the ones before it as its own.
        for member, member_size in self.burst:
            if member is not site:
                member.owned_by[site.site] += member_size
        self.burst.clear()
        self.burst.append((site, size))


def _is_frame(
    pending: tuple[Any, ...],
    tid: int,
    stack: tuple[Any, ...],
    frame_sizes: dict[tuple[str, str], Counter[int]],
    kinds: Any,
) -> bool:
    """Whether ``pending`` (the allocation before one made with ``stack``) was the frame object
    of a call that began right after it, from the same line."""
    _, size, _, kind, pending_tid, pending_stack = pending
    depth = len(pending_stack)
    if tid != pending_tid or kind != kinds.PYMALLOC_MALLOC or len(stack) <= depth:
        return False
    if stack[len(stack) - depth :] != pending_stack:
        return False  # not a call from the line that made ``pending``
    function, filename, _ = stack[len(stack) - depth - 1]
    sizes = frame_sizes.setdefault((function, filename), Counter())
    sizes[size] += 1
    return bool(sizes.most_common(1)[0][0] == size)


def _owners(sites: dict[str, Site]) -> None:
    """A site whose freed bytes were nearly all claimed by one other site's objects is owned by
    it; the owner counts what it owns (one level: an owner's own owner is not followed)."""
    for site in sites.values():
        if not site.owned_by or site.site == NO_SITE:
            continue
        owner, claimed = site.owned_by.most_common(1)[0]
        freed = site.bytes - site.freed_in_visit_bytes
        if owner in sites and owner != NO_SITE and freed > 0 and claimed >= OWNED_SHARE * freed:
            site.owner = owner
    for site in sites.values():
        if site.owner is not None and sites[site.owner].owner is None:
            sites[site.owner].owned_bytes += site.bytes
            sites[site.owner].owned_allocations += site.allocations


def _judge(site: Site, short: int, min_count: int) -> None:
    if site.sizes:
        typical, _ = max(site.sizes.items(), key=lambda kv: (kv[0] * kv[1], kv[0]))
        site.typical_size = typical
        site.typical_count = site.sizes[typical]
        near = sum(s * n for s, n in site.sizes.items() if typical / 2 <= s <= typical * 2)
        site.uniformity = near / site.bytes if site.bytes else 1.0
    alive = site.alive_at_end / site.allocations if site.allocations else 0.0
    temporary = site.freed_in_visit_bytes / site.bytes if site.bytes else 0.0
    freed = 1 - alive
    owned_per_visit = site.owned_bytes // site.visits if site.visits else 0
    if site.site == NO_SITE:
        site.why = "allocated by the interpreter or libraries with no frame of your code on the stack"
    elif site.owner is not None:
        site.why = (
            f"freed with the objects made at {os.path.basename(site.owner)}: pooling those saves these too"
        )
    elif alive > ALIVE_SHARE:
        site.why = (
            f"objects live on: {site.alive_at_end:,} of {site.allocations:,} still alive at exit "
            "(a cache or a long-lived structure)"
        )
    elif site.typical_count < min_count:
        site.why = (
            f"rare: {site.typical_count:,} visits made {site.typical_size:,} B (fewer than {min_count:,})"
        )
    elif site.typical_size + owned_per_visit < MIN_SIZE:
        site.why = (
            f"small: {site.typical_size + owned_per_visit:,} B objects come from pymalloc's free lists, and "
            "many are the interpreter's own temporaries, which no pool can hold"
        )
    elif temporary >= TEMPORARY_SHARE:
        site.why = (
            f"temporaries of the line: {temporary:.0%} of its bytes freed before the line was done (a "
            "library's scratch space, a result thrown away), nothing your code holds to pool"
        )
    elif site.short_lived_share < SHORT_SHARE and not (
        freed >= FREED_SHARE and site.peak_alive * BATCH_REUSE <= site.visits
    ):
        site.why = (
            f"held long: {site.short_lived_share:.0%} of its bytes freed within {short} visits of the line "
            "(pooling pays for objects that come back soon)"
        )
    elif site.uniformity < UNIFORM_SHARE:
        site.why = (
            f"sizes vary: {site.uniformity:.0%} of its bytes within 2x of {site.typical_size:,} B "
            "(one pool would hold objects of very different sizes)"
        )
    else:
        site.candidate = True
        owns = f" (and {owned_per_visit:,} B a visit of what they own)" if owned_per_visit else ""
        if site.short_lived_share >= SHORT_SHARE:
            lived = f"{site.short_lived_share:.0%} of the bytes freed within {short} visits"
        else:
            lived = f"freed in batches, at most {site.peak_alive:,} alive at once"
        site.why = f"{site.typical_count:,} visits made {site.typical_size:,} B{owns}, {lived}: pool them"


def _estimate(
    ranked: Sequence[Site], gc_collections: Sequence[int], pymalloc_by_site: Counter[str]
) -> Estimate:
    """Every allocation of the candidates and of what they own, less the ones alive at the end
    (a pool keeps those) and the first of each object a pool would hold (its peak)."""
    chosen = [s for s in ranked if s.candidate]
    owned = {s.site for s in ranked if s.owner in {c.site for c in chosen}}
    pymalloc = sum(pymalloc_by_site.values())
    counted = [*(s.site for s in chosen), *owned]
    share = sum(pymalloc_by_site[site] for site in counted) / pymalloc if pymalloc else 0.0

    def kept(site: Site) -> float:
        """The share a pool would still make: what is alive at the end, and the pool's own fill."""
        return min(1.0, site.alive_at_end / max(site.allocations, 1) + site.peak_alive / max(site.visits, 1))

    allocations = sum((s.allocations + s.owned_allocations) * (1 - kept(s)) for s in chosen)
    saved = sum((s.bytes + s.owned_bytes) * (1 - kept(s)) for s in chosen)
    return Estimate(
        sites=len(chosen),
        allocations=int(allocations),
        bytes=int(saved),
        collections=math.floor(gc_collections[0] * share) if gc_collections else 0,
    )
