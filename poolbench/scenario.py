"""The scenario API: what a user writes to have poolbench measure their object.

::

    from poolbench import Scenario

    class BigBuffer(Scenario):
        name = "big-buffer"                     # what `poolbench run` and `list` call it
        description = "fill a 4 MiB buffer"     # optional; the class docstring is the default
        params = {"size": 4 * 1024 * 1024}      # defaults; `-p size=1MiB` overrides

        def new(self):                          # a fresh object (the unpooled path, every op)
            return bytearray(self.params["size"])

        def use(self, buf):                     # one operation's work with the object
            buf[0] = 1

poolbench builds both paths from these methods. Unpooled: ``obj = new(); use(obj)``. Pooled:
``obj = pool.get(); use(obj); pool.put(obj)``, with :meth:`Scenario.reset` as the pool's reset
hook. The generic ``batch`` parameter holds that many objects alive at once per step (take all,
use all, give all back): in CPython an object freed within one operation never triggers a
collection, so a batch is what makes garbage-collection effects real.

A scenario whose ``use`` (or ``run``) is ``async def`` is an **async scenario**: ``--concurrency``
tasks on one event loop share each pool (the counterpart of ``--threads``), and an operation is
``obj = new(); await use(obj)`` unpooled, ``obj = await pool.get(); await use(obj);
pool.put(obj)`` pooled (a non-blocking pool's ``get`` is called, not awaited). ``setup``,
``teardown`` and ``new`` may be ``async def`` too; they run on the same loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from itertools import repeat
from types import MethodType
from typing import Any, ClassVar


class SkipScenario(Exception):
    """Raise it (from ``setup``, say) when a scenario cannot run here: its cells are marked
    skipped with the message, which should say how to make it run; the run still succeeds."""


class Scenario:
    """Base class of every scenario; override :meth:`new` and :meth:`use`, optionally more."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: dict[str, Any] = {}
    """Class attribute: the defaults. On an instance: the resolved values, ``batch`` included."""
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}
    """Allowed values of parameters that take only a few (``{"kind": ("dict", "dataclass")}``)."""
    by_default: ClassVar[bool] = True
    """Whether this built-in scenario runs when no scenario is named; the network ones run only
    when named (``poolbench run http-buffers``), so the default matrix keeps its time."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = {**self.default_params(), **(params or {})}

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"batch": 1, **cls.params}

    @classmethod
    def summary(cls) -> str:
        """``description``, or the first line of the class docstring."""
        if cls.description:
            return cls.description
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def setup(self) -> None:
        """Called once per worker process, before anything is measured."""

    def teardown(self) -> None:
        """Called once per worker process, after everything was measured."""

    def new(self) -> Any:
        """Return a fresh object; the unpooled path calls it for every operation."""
        raise NotImplementedError(f"{type(self).__name__} must define new()")

    def reset(self, obj: Any) -> None:
        """Make a used object ready for reuse (the pool calls it once per reuse).

        Leave it undefined when :meth:`use` overwrites everything it reads: poolbench then
        builds pools without a reset hook.
        """

    def accept(self, obj: Any) -> bool:
        """Whether the pool should keep ``obj`` on put (leave undefined to keep everything)."""
        return True

    def fingerprint(self, obj: Any) -> Any:
        """The state ``poolbench doctor`` compares a reused object by (default: its contents).

        Define it when reuse without a reset is intended: a buffer every read overwrites can say
        ``return len(buf)``, so leftover bytes are not reported as dirty reuse.
        """
        from .pools import fingerprint

        return fingerprint(obj)

    def use(self, obj: Any) -> None:
        """One operation's work with ``obj``."""
        raise NotImplementedError(f"{type(self).__name__} must define use()")

    def run(self, n: int, get: Callable[[], Any], put: Callable[[Any], None] | None) -> None:
        """Run ``n`` operations taking objects from ``get`` and giving them back to ``put``.

        ``get`` is :meth:`new` on the unpooled path, where ``put`` is ``None`` (drop the object),
        and the pool's ``get``/``put`` on the pooled one. ``n`` is a multiple of ``batch``. A
        scenario whose flow does not fit get-use-put (tasks handed to other threads, say)
        overrides this one method; poolbench times calls to it.
        """
        batch: int = self.params["batch"]
        use = self.use
        if batch == 1:
            if put is None:
                for _ in repeat(None, n):
                    use(get())
            else:
                for _ in repeat(None, n):
                    obj = get()
                    use(obj)
                    put(obj)
            return
        # Iterating a prebuilt list allocates nothing per object (range() over 256 would).
        slots: list[Any] = [None] * batch
        index = list(range(batch))
        for _ in repeat(None, n // batch):
            for i in index:
                slots[i] = get()
            for obj in slots:
                use(obj)
            if put is not None:
                for obj in slots:
                    put(obj)
            for i in index:
                slots[i] = None

    def counters(self) -> dict[str, int]:
        """Running totals of events outside Python's view (``{"connections": n}``: connections
        the scenario's server accepted so far), or leave it undefined.

        poolbench reads them before and after each timed value, on the worker's main thread,
        and reports each per 1,000 operations of the strategy (``connections/1k ops``): 1,000
        for a client that connects per request, about 0 for one that reuses its connections.
        """
        return {}

    def pool_options(self, strategy: str, threads: int) -> dict[str, Any]:
        """Options for the pool built for ``strategy``; the defaults keep every object in use.

        ``threads * batch`` objects can be out at once: free lists retain at least that many and
        the bounded pool allows that many, so pools are measured at their best, not starved.
        """
        out = threads * self.params["batch"]
        if strategy == "freelist":
            return {"max_retained": max(128, out)}
        if strategy == "bounded":
            return {"max_size": out, "timeout": None}
        return {}

    def overrides(self, method: str) -> bool:
        """Whether this scenario defines ``method`` itself rather than inheriting the base one."""
        return getattr(type(self), method) is not getattr(Scenario, method)

    @classmethod
    def is_async(cls) -> bool:
        """Whether this is an async scenario: its ``use`` or its ``run`` is ``async def``."""
        return inspect.iscoroutinefunction(cls.use) or inspect.iscoroutinefunction(cls.run)

    @classmethod
    def not_runnable(cls) -> str | None:
        """Why poolbench cannot run this scenario as written, or ``None``: a combination whose
        coroutines would be made and never awaited, so the timed operation would not be the
        user's (a measurement of it must never become a verdict)."""
        name = cls.__name__
        own_run = cls.run is not Scenario.run
        if inspect.iscoroutinefunction(cls.use) and own_run and not inspect.iscoroutinefunction(cls.run):
            return f"{name}.use() is async def but its run() is not: make run() async def and await use()"
        if not cls.is_async():
            for method in ("new", "reset", "setup", "teardown", "accept"):
                if inspect.iscoroutinefunction(getattr(cls, method)):
                    return (
                        f"{name}.{method}() is async def but use() is not: an async scenario has an "
                        "async def use() (or run())"
                    )
        for method in ("reset", "accept", "fingerprint", "pool_options", "counters"):
            if inspect.iscoroutinefunction(getattr(cls, method)):
                return (
                    f"{name}.{method}() cannot be async def: poolbench and its pools call it without awaiting"
                )
        return None

    def timed(self) -> Callable[[int, Callable[[], Any], Callable[[Any], None] | None], Any]:
        """What poolbench times: :meth:`run`, or :meth:`run_async` in an async scenario that
        keeps the base ``run`` (a coroutine function either way there)."""
        if self.is_async() and not self.overrides("run"):
            return self.run_async
        return self.run

    async def run_async(self, n: int, get: Callable[[], Any], put: Callable[[Any], None] | None) -> None:
        """:meth:`run` of an async scenario, in one task of the loop: ``await use(obj)``, and
        ``await get()`` where ``get`` is a coroutine function (an ``async def new``, a pool that
        makes callers wait), ``await put(obj)`` where ``put`` is (asyncpg's and psycopg's pools
        release a connection with a round trip)."""
        batch: int = self.params["batch"]
        use: Callable[[Any], Awaitable[None]] = self.use  # type: ignore[assignment]
        waits = awaits(get)
        put_waits = put is not None and awaits(put)
        # One loop per shape, chosen here: a branch inside the loop would be timed on the pooled
        # side only. (A plain get with an awaited put, a shape no pool has, takes the batch loop.)
        if batch == 1 and (waits or not put_waits):
            if put is None:
                if waits:
                    for _ in repeat(None, n):
                        await use(await get())
                else:
                    for _ in repeat(None, n):
                        await use(get())
            elif put_waits:
                aput: Callable[[Any], Awaitable[None]] = put  # type: ignore[assignment]
                for _ in repeat(None, n):
                    obj = await get()
                    await use(obj)
                    await aput(obj)
            elif waits:
                for _ in repeat(None, n):
                    obj = await get()
                    await use(obj)
                    put(obj)
            else:
                for _ in repeat(None, n):
                    obj = get()
                    await use(obj)
                    put(obj)
            return
        slots: list[Any] = [None] * batch
        index = list(range(batch))
        for _ in repeat(None, n // batch):
            for i in index:
                slots[i] = (await get()) if waits else get()
            for obj in slots:
                await use(obj)
            if put_waits:
                for obj in slots:
                    await put(obj)  # type: ignore[misc]
            elif put is not None:
                for obj in slots:
                    put(obj)
            for i in index:
                slots[i] = None


_AWAITS: dict[Any, bool] = {}


def awaits(get: Callable[..., Any]) -> bool:
    """Whether ``get`` is a coroutine function, remembered per function: ``inspect`` allocates
    while it looks (an int for the code's flags, now and then), and this runs inside the counted
    operations, where the count must not depend on which function it is."""
    func = get.__func__ if isinstance(get, MethodType) else get
    try:
        found = _AWAITS.get(func)
        if found is None:
            found = _AWAITS[func] = inspect.iscoroutinefunction(func)
    except TypeError:  # unhashable
        return inspect.iscoroutinefunction(func)
    return found
