"""http-client on asyncio, through aiohttp: a session (and connection) per request, or a kept-alive one."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from itertools import repeat
from typing import Any

from poolbench import Scenario, SkipScenario
from poolbench.scenario import awaits

from .http_client import Server


class AsyncHttpClient(Scenario):
    """One request from an asyncio task: GET a `size`-byte response from the loopback server
    (a child process) with aiohttp. Unpooled, every request makes a ``ClientSession`` with a
    connector of its own (a new connection, TCP and TLS) and closes it; pooled, it takes a
    session whose connection is kept alive (poolbench's pools), or shares one session whose
    connector keeps ``max_size`` connections (``--pool aiohttp``)."""

    name = "async-http-client"
    description = "asyncio, aiohttp: a session and connection per request vs a kept-alive one; tls=off|on"
    params = {"size": 1024, "tls": "off", "timeout": 10.0}
    choices = {"tls": ("off", "on")}
    by_default = False

    def setup(self) -> None:
        try:
            import aiohttp
        except ImportError:
            raise SkipScenario("async-http-client needs aiohttp: pip install 'poolbench[http]'") from None
        self.aiohttp: Any = aiohttp
        self.server = Server(self.params["size"], self.params["tls"] == "on", self.params["timeout"])
        self.url, self.client_tls = self.server.url, self.server.client_tls
        self.timeout = aiohttp.ClientTimeout(total=self.params["timeout"])

    def new(self) -> Any:
        """A session with a connector of one connection (made on the running loop)."""
        aiohttp = self.aiohttp
        connector = aiohttp.TCPConnector(limit=1, ssl=self.client_tls if self.client_tls else False)
        return aiohttp.ClientSession(connector=connector, timeout=self.timeout)

    async def use(self, session: Any) -> None:  # type: ignore[override]
        try:
            async with session.get(self.url) as response:
                body = await response.read()
        except TimeoutError:  # aiohttp's ServerTimeoutError, or asyncio's for the total
            raise TimeoutError(f"no response within timeout={self.params['timeout']:g} s") from None
        if response.status != 200 or len(body) != self.params["size"]:
            raise ValueError(f"unexpected response: status {response.status}, {len(body)} bytes")

    async def run(  # type: ignore[override]
        self, n: int, get: Callable[[], Any], put: Callable[[Any], Any] | None
    ) -> None:
        use = self.use
        if put is None:
            for _ in repeat(None, n):
                session = get()
                await use(session)
                await session.close()
            return
        if awaits(get):  # bounded: an awaited get
            for _ in repeat(None, n):
                session = await get()
                await use(session)
                put(session)
            return
        for _ in repeat(None, n):
            session = get()
            await use(session)
            put(session)

    def fingerprint(self, session: Any) -> Any:
        return type(session).__name__

    def counters(self) -> dict[str, int]:
        """The connections the server accepted: reported per 1,000 requests."""
        return {"connections": self.server.accepted()}

    def pool_options(self, strategy: str, threads: int) -> dict[str, Any]:
        if strategy == "aiohttp":
            return {"max_size": threads, "tls": self.client_tls, "timeout": self.params["timeout"]}
        return super().pool_options(strategy, threads)

    async def teardown(self) -> None:  # type: ignore[override]
        # Sessions the pools still held were dropped with them: close what a collection finds
        # open, so no socket outlives the cell (aiohttp warns of an unclosed session otherwise).
        gc.collect()
        aiohttp = self.aiohttp if hasattr(self, "aiohttp") else None
        if aiohttp is not None:
            for obj in gc.get_objects():
                if isinstance(obj, aiohttp.ClientSession) and not obj.closed:
                    await obj.close()
        await asyncio.sleep(0)
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()
