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
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
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
