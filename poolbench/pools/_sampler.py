"""Checking level simple: one object watched for one round trip at a time, nothing paid on a
call while none is out (see :mod:`._checked`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..callsites import call_site
from . import _watchdog
from ._base import Pool
from ._checker import Checker

SAMPLE_PERIOD = 0.01
"""Seconds between level simple's samples: one object watched for one round trip (put, get,
put) at a time, the next one armed this long after the last one came back."""


class Sampler:
    """Level simple's state: at most one object watched, and the swappable parts of get/put.

    Unwatched, ``get`` is the pool's own fast path and ``put`` one call around the pool's; the
    checking versions are swapped in through the functions' default arguments (``__defaults__``,
    read at each call) only while an object is watched, and the watchdog thread arms the next
    sample every :data:`SAMPLE_PERIOD` seconds. So a cached ``get``/``put`` pays nothing for
    the objects that are not watched.
    """

    def __init__(self, checker: Checker, put: Any, inner_put: Any) -> None:
        self.checker = checker
        self.put = put
        self.inner_put = inner_put
        self.set_get: Callable[[bool], None] = lambda watching: None
        """Switches ``get`` to its watching version and back (set by :func:`sample`)."""
        self.obj: Any = None
        self.out = False
        self.at_put: Any = None
        self.get_site = self.put_site = ""
        self.armed = False
        self.next_arm = 0.0

    def arm(self) -> None:
        """The next object put is watched."""
        with self.checker.lock:
            if self.obj is None and not self.armed:
                self.armed = True
                self.put.__defaults__ = (self.first_put,)

    def first_put(self, obj: Any) -> None:
        """The armed put: start watching ``obj``."""
        checker = self.checker
        site = call_site(3, checker.fallback_site)
        with checker.lock:
            if not self.armed:
                self.inner_put(obj)
                return
            self.armed = False
            self.obj, self.out, self.put_site = obj, False, site
        self.inner_put(obj)
        self.at_put = checker.fingerprint(obj)
        self.set_get(True)
        self.put.__defaults__ = (self.watching_put,)

    def seen(self, obj: Any) -> None:
        """The watched object is handed out again: changed while idle, or reused dirty?"""
        checker = self.checker
        site = call_site(4, checker.fallback_site)
        state = checker.fingerprint(obj)
        with checker.lock:
            if obj is not self.obj:
                return
            if self.out:
                checker.add("double-put", self.put_site, f"handed out twice: again at {site} (sampled)")
                return
            self.out, self.get_site = True, site
        if state != self.at_put:
            checker.add("use-after-put", self.put_site,
                        f"{type(obj).__name__} changed after this put(), found at {site} (sampled)")  # fmt: skip
        elif checker.has_fresh and state != checker.fresh:
            checker.add("dirty-reuse", site, f"{type(obj).__name__} differs from a fresh one (sampled)")
        checker.took(id(obj), 3)

    def watching_put(self, obj: Any) -> None:
        if obj is not self.obj:
            self.inner_put(obj)
            return
        checker = self.checker
        site = call_site(3, checker.fallback_site)
        with checker.lock:
            if not self.out:
                checker.add(
                    "double-put",
                    site,
                    f"put twice without a get between; first put at {self.put_site} (sampled)",
                )
                return  # not passed on: the pool would hand it to two borrowers
            checker.taken.pop(id(obj), None)
            self.obj, self.out = None, False  # one round trip watched
            self.set_get(False)
            self.put.__defaults__ = (self.inner_put,)
            self.next_arm = time.monotonic() + SAMPLE_PERIOD
        self.inner_put(obj)

    def finish(self) -> None:
        obj, self.obj = self.obj, None
        self.set_get(False)
        self.put.__defaults__ = (self.inner_put,)
        if obj is None:
            return
        if self.out:
            self.checker.add("leak", self.get_site, "taken and never returned (sampled)")
        elif self.checker.fingerprint(obj) != self.at_put:
            self.checker.add("use-after-put", self.put_site,
                             f"{type(obj).__name__} changed after this put() (sampled)")  # fmt: skip

    def tick(self, now: float) -> None:
        """From the watchdog thread: arm the next sample when the period has passed."""
        if self.obj is None and not self.armed and now >= self.next_arm:
            self.arm()


def sample(pool: Pool[Any], checker: Checker) -> None:
    """Level simple (see :class:`Sampler`). The fresh fingerprint comes from the objects the pool
    makes (its slow path), so it is never taken from a reused, dirty one."""
    inner_get, inner_put = pool.get, pool.put
    parts = getattr(inner_get, "fast_parts", None)

    def put(obj: Any, _put: Any = inner_put) -> None:
        _put(obj)

    sampler = Sampler(checker, put, inner_put)

    def fresh(obj: Any) -> Any:
        if not checker.has_fresh:
            checker.fresh, checker.has_fresh = checker.fingerprint(obj), True
        return obj

    if parts is not None:
        get, sampler.set_get = _fast_get(parts, sampler, fresh)
    else:
        get, sampler.set_get = _any_get(inner_get, sampler, fresh)
    checker.flush = sampler.finish
    sampler.arm()  # the first object put is watched
    _watchdog.samplers.add(sampler)
    _watchdog.start(SAMPLE_PERIOD)
    pool.get = get  # type: ignore[method-assign]
    pool.put = put  # type: ignore[method-assign]


def _fast_get(
    parts: tuple[Any, Any, Any], sampler: Sampler, fresh: Callable[[Any], Any]
) -> tuple[Callable[..., Any], Callable[[bool], None]]:
    """A get for a pool with a fast path (its items' ``pop``, its slow path, its reset), and the
    switch that makes it watch what it pops: the pop is a default argument, swapped in place."""
    items, slow, reset = parts
    pop = items.pop

    def watching_pop() -> Any:
        obj = pop()
        if obj is sampler.obj:
            sampler.seen(obj)
        return obj

    def new() -> Any:
        return fresh(slow())

    get: Callable[..., Any]
    if reset is None:

        def fast_get(pop: Any = pop, slow: Any = new) -> Any:
            try:
                return pop()
            except IndexError:
                return slow()

        get = fast_get
    else:

        def fast_get_reset(pop: Any = pop, slow: Any = new, reset: Any = reset) -> Any:
            try:
                obj = pop()
            except IndexError:
                return slow()
            reset(obj)
            return obj

        get = fast_get_reset
    defaults = get.__defaults__ or ()

    def set_fast(watching: bool) -> None:
        get.__defaults__ = ((watching_pop if watching else pop), *defaults[1:])

    return get, set_fast


def _any_get(
    inner_get: Callable[..., Any], sampler: Sampler, fresh: Callable[[Any], Any]
) -> tuple[Callable[..., Any], Callable[[bool], None]]:
    """A get for any other pool, and its switch: the first object it makes is fingerprinted,
    then the get it calls is a keyword default, swapped in place."""
    made = [False]

    def watching_get(*args: Any, **kwargs: Any) -> Any:
        obj = inner_get(*args, **kwargs)
        if obj is sampler.obj:
            sampler.seen(obj)
        return obj

    def first_get(*args: Any, **kwargs: Any) -> Any:
        obj = fresh(inner_get(*args, **kwargs))
        made[0] = True
        set_any(sampler.obj is not None)
        return obj

    def any_get(*args: Any, _get: Any = first_get, **kwargs: Any) -> Any:
        return _get(*args, **kwargs)

    def set_any(watching: bool) -> None:
        if made[0]:
            any_get.__kwdefaults__ = {"_get": watching_get if watching else inner_get}

    return any_get, set_any
