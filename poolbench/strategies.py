"""Building the pools of one scenario: what the worker measures and the doctor checks."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .params import SIZE_PARAM
from .pools import Pool, bound_of, create_pool
from .scenario import Scenario, SkipScenario
from .timing import call, resolve

Get = Callable[[], Any]
Put = Callable[[Any], None] | None


@dataclass
class Strategy:
    """One strategy inside a worker: its pool (none for ``none``) and the callables it runs."""

    name: str
    get: Get
    put: Put
    pool: Pool[Any] | None

    def here(self) -> tuple[Get, Put]:
        """The ``get``/``put`` for the calling thread to use: a sharded pool gives each thread its
        own (read in that thread), so threads of a team never share a function or a deque."""
        if self.pool is None:
            return self.get, self.put
        return self.pool.get, self.pool.put


def build_strategies(
    scenario: Scenario,
    names: Sequence[str],
    threads: int,
    *,
    wrap: Callable[[Pool[Any]], Pool[Any]] | None = None,
) -> list[Strategy]:
    """``none`` uses ``scenario.new`` directly (what a user writes without a pool).

    ``wrap`` turns each pool into another (the doctor's checking pool, say) before it is used.
    """
    reset = scenario.reset if scenario.overrides("reset") else None
    accept = scenario.accept if scenario.overrides("accept") else None
    asynchronous = scenario.is_async()
    built = []
    for name in names:
        if name == "none":
            built.append(Strategy(name, scenario.new, None, None))
            continue
        options = {"reset": reset, "accept": accept, **scenario.pool_options(name, threads)}
        if SIZE_PARAM in scenario.params:  # a size sweep's cell: the pool's size is the swept one
            options[SIZE_PARAM] = scenario.params[SIZE_PARAM]
        pool = create_pool(name, scenario.new, asynchronous=asynchronous, **options)
        if inspect.iscoroutinefunction(scenario.new) and not inspect.iscoroutinefunction(pool.get):
            raise SkipScenario(
                f"pool={name} calls {type(scenario).__name__}.new() without awaiting it, and new() is "
                "async def: --pool bounded awaits it (or make new() a plain def)"
            )
        if wrap is not None:
            pool = wrap(pool)
        built.append(Strategy(name, pool.get, pool.put, pool))
    return built


def fill(strategy: Strategy, objects: int, *, on_loop: bool = False) -> None:
    """Take ``objects`` from the strategy's pool at once and give them back: a pool that has served
    that many borrowers at a time (``threads * batch``), so no thread misses for want of warmth.
    An async pool is filled on the worker's event loop, and any pool of an async scenario
    (``on_loop``): its ``new`` may make what needs a running loop (an aiohttp session)."""
    get, put = strategy.get, strategy.put
    if put is None:
        return
    bound = bound_of(strategy.pool)
    if bound is not None:
        objects = min(objects, bound)  # a bounded pool would wait for the rest
    get_waits, put_waits = inspect.iscoroutinefunction(get), inspect.iscoroutinefunction(put)
    if not (get_waits or put_waits or on_loop):
        for obj in [get() for _ in range(objects)]:
            put(obj)
        return

    async def cycle() -> None:
        taken = [(await get()) if get_waits else get() for _ in range(objects)]
        for obj in taken:
            if put_waits:
                await put(obj)  # type: ignore[misc]
            else:
                put(obj)

    resolve(cycle())


def close(strategies: Sequence[Strategy]) -> None:
    """Close the pools that hold resources open on the worker's loop (``aclose``: poolbench's
    AsyncBoundedPool, asyncpg's and psycopg's pools), so that their tasks and connections end with
    the measurement instead of being found pending, or left to the server."""
    for s in strategies:
        aclose = getattr(s.pool, "aclose", None)
        if aclose is not None:
            call(aclose)
