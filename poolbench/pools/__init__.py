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

Every pool takes ``new`` and the keyword-only options ``reset`` (run once per reuse), ``accept``
(refuse objects on ``put``; see :func:`max_len`) and ``counting`` (also count gets and puts), and
offers ``get()``, ``put(obj)``, ``with pool.borrow() as obj:``, ``clear()`` and ``stats()``.
"""

from __future__ import annotations

from typing import Any

from ..errors import PoolClosed, PoolError, PoolMisuse, PoolTimeout
from ._base import Pool, PoolStats, max_len
from ._bounded import BoundedPool
from ._checked import Checker, Finding, checked, fingerprint
from ._simple import FreeListPool, LockedPool, NoPool, QueuePool
from ._sync import SyncPool

STRATEGIES: dict[str, type[Pool[Any]]] = {
    cls.strategy: cls for cls in (NoPool, SyncPool, FreeListPool, BoundedPool, LockedPool, QueuePool)
}
"""The built-in strategies by the short name ``poolbench run --pool`` takes."""


def create_pool(strategy: str, new: Any, **options: Any) -> Pool[Any]:
    """Build the pool registered as ``strategy`` (see :data:`STRATEGIES`)."""
    try:
        factory: Any = STRATEGIES[strategy]
    except KeyError:
        known = ", ".join(STRATEGIES)
        raise ValueError(f"unknown pool strategy {strategy!r} (known: {known})") from None
    pool: Pool[Any] = factory(new, **options)
    return pool


__all__ = [
    "STRATEGIES",
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
    "checked",
    "create_pool",
    "fingerprint",
    "max_len",
]
