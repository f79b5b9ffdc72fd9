"""The pools poolbench measures, shipped so that users can adopt the one that wins.

=============  ===================  ==================================================================
name           class                shape
=============  ===================  ==================================================================
``none``       :class:`NoPool`      baseline: every ``get`` calls ``new()``, ``put`` drops the object
``sync``       :class:`SyncPool`    Go's ``sync.Pool``: unbounded, victim cache at full collections
``freelist``   :class:`FreeListPool`  LIFO, retains at most ``max_retained``
``bounded``    :class:`BoundedPool`   at most ``max_size`` exist; ``get`` waits, :class:`PoolTimeout`
``locked``     :class:`LockedPool`  reference: list + ``threading.Lock``
``queue``      :class:`QueuePool`   reference: ``queue.LifoQueue``
=============  ===================  ==================================================================

For asyncio code, :class:`AsyncBoundedPool` (``await pool.get()``, ``async with pool.borrow()``,
``await pool.aclose()``) is what ``bounded`` means in an async scenario; the non-blocking pools
(``sync``, ``freelist``) serve async code as they are.

Every pool takes ``new`` and the keyword-only options ``reset`` (run once per reuse), ``accept``
(refuse objects on ``put``; see :func:`max_len`) and ``counting`` (also count gets and puts), and
offers ``get()``, ``put(obj)``, ``with pool.borrow() as obj:``, ``clear()`` and ``stats()``.
"""

from __future__ import annotations

from typing import Any

from ..errors import PoolClosed, PoolError, PoolMisuse, PoolTimeout
from ._async import AsyncBoundedPool
from ._base import Pool, PoolStats, bound_of, max_len
from ._bounded import BoundedPool
from ._checked import Checker, Finding, checked, fingerprint
from ._simple import FreeListPool, LockedPool, NoPool, QueuePool
from ._sync import SyncPool

STRATEGIES: dict[str, type[Pool[Any]]] = {
    cls.strategy: cls for cls in (NoPool, SyncPool, FreeListPool, BoundedPool, LockedPool, QueuePool)
}
"""The built-in strategies by the short name ``poolbench run --pool`` takes."""

ASYNC_STRATEGIES: dict[str, type[Pool[Any]]] = {"bounded": AsyncBoundedPool}
"""What a name means in an async scenario, where it differs: pools whose callers wait."""


PLUGIN_GROUP = "poolbench.pools"


def plugins() -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Pool factories published by installed packages under the entry-point group
    ``poolbench.pools`` (name → ``factory(new, **options)``), and the ones that failed to load.

    Loaded when asked for (``poolbench list``, ``run --pool NAME``), never at import time.
    """
    from importlib import metadata

    found: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        if ep.name in STRATEGIES:
            problems.append((ep.name, f"{ep.value} clashes with the built-in strategy {ep.name!r}"))
            continue
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported by name
            problems.append((ep.name, f"{ep.value}: {type(exc).__name__}: {exc}"))
    return found, problems


def factory_of(strategy: str, *, asynchronous: bool = False) -> Any:
    """The factory registered as ``strategy`` (:data:`STRATEGIES`, then pool plugins; for async
    code, :data:`ASYNC_STRATEGIES` first), or ``None``."""
    factory: Any = (ASYNC_STRATEGIES.get(strategy) if asynchronous else None) or STRATEGIES.get(strategy)
    return factory if factory is not None else plugins()[0].get(strategy)


def create_pool(strategy: str, new: Any, *, asynchronous: bool = False, **options: Any) -> Pool[Any]:
    """Build the pool registered as ``strategy`` (:func:`factory_of`)."""
    factory = factory_of(strategy, asynchronous=asynchronous)
    if factory is None:
        known = ", ".join([*STRATEGIES, *plugins()[0]])
        raise ValueError(f"unknown pool strategy {strategy!r} (known: {known})")
    pool: Pool[Any] = factory(new, **options)
    return pool


__all__ = [
    "ASYNC_STRATEGIES",
    "STRATEGIES",
    "AsyncBoundedPool",
    "BoundedPool",
    "Checker",
    "Finding",
    "FreeListPool",
    "LockedPool",
    "NoPool",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolMisuse",
    "PoolStats",
    "PoolTimeout",
    "QueuePool",
    "SyncPool",
    "bound_of",
    "checked",
    "create_pool",
    "factory_of",
    "fingerprint",
    "max_len",
    "plugins",
]
