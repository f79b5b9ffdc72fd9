"""Hold the pooled object for a fixed time: a known answer for ``poolbench size``.

An operation that holds its object for T (a sleep, as a connection is held through a query) at
concurrency C, from a pool of size S, runs min(S, C) at a time: min(S, C) / T operations a second.

    poolbench size hold --scenarios-dir scenarios/examples -t 16
    poolbench size async-hold --scenarios-dir scenarios/examples -c 64 --sizes 1,2,4,8,16,32,64,128
"""

from __future__ import annotations

import asyncio
import time

from poolbench import Scenario


class Hold(Scenario):
    """Hold the object for `hold_ms` milliseconds (time.sleep), in threads."""

    name = "hold"
    params = {"hold_ms": 2.0}

    def new(self) -> bytearray:
        return bytearray(64)

    def use(self, buf: bytearray) -> None:
        time.sleep(self.params["hold_ms"] / 1000)


class AsyncHold(Scenario):
    """Hold the object for `hold_ms` milliseconds (asyncio.sleep), in tasks."""

    name = "async-hold"
    params = {"hold_ms": 2.0}

    def new(self) -> bytearray:
        return bytearray(64)

    async def use(self, buf: bytearray) -> None:  # type: ignore[override]
        await asyncio.sleep(self.params["hold_ms"] / 1000)
