"""The asyncio shape of http-buffers: a loopback HTTP/1.1 server on the worker's event loop."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable
from itertools import repeat
from typing import Any

from poolbench import Scenario, SkipScenario
from poolbench.scenario import awaits

from .http_buffers import HEAD_ROOM, RESPONSE, Head, request_for, tls_contexts


class Exchange:
    """One keep-alive connection: the client's protocol and the server's, and the request in flight."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.client: _Client | None = None
        self.server: _Reader | None = None
        self.waiter: asyncio.Future[None] | None = None

    def fail(self, exc: BaseException) -> None:
        """End the request in flight with ``exc`` (the first failure of a connection wins)."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        for side in (self.client, self.server):
            if side is not None and side.transport is not None:
                side.transport.close()


class _Client(asyncio.BufferedProtocol):
    """The client of one connection: reads the response into a buffer of its own (a
    ``data_received`` client would have the loop allocate 256 KiB a read, counted against
    every request), counts its bytes, then ends the request."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.transport: asyncio.BaseTransport | None = None
        self.got = 0
        self.eof = False
        self.buffer = memoryview(bytearray(len(RESPONSE) * 4))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.got += nbytes
        if self.got >= len(RESPONSE):
            self.got -= len(RESPONSE)
            waiter = self.exchange.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool | None:
        self.eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        # Closed by the server, or by an error: say so. Closed on this side: the server side
        # sees the end of the stream and says where the request stood.
        if exc is not None or self.eof:
            self.exchange.fail(ConnectionError("the server closed the connection before the response"))


class _Reader:
    """The server side's request parsing, shared by both shapes: a head into the connection's
    head buffer, parsed with httptools; the body into the request's buffer."""

    transport: asyncio.Transport | None

    def __init__(self, owner: AsyncHttpBuffers) -> None:
        self.owner = owner
        self.exchange: Exchange | None = None
        self.transport = None
        self.head = bytearray(HEAD_ROOM)
        self.view = memoryview(self.head)
        self.start = self.end = 0
        self.body: memoryview | None = None
        self.length = -1  # the body's length once its head is read; -1 while reading a head
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.owner.accepted(transport.get_extra_info("peername")[1], self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.exchange is None:
            return
        if self.length >= 0:
            self.exchange.fail(
                ConnectionError(
                    f"the client closed the connection mid-body: {self.got} of {self.length} bytes"
                )
            )
        elif self.end > self.start:
            self.exchange.fail(
                ConnectionError("the client closed the connection before a request's head ended")
            )
        else:
            self.exchange.fail(ConnectionError("the client closed the connection between requests"))

    def headed(self) -> None:
        """After bytes landed in the head buffer: if the head ended, parse it and move to the body."""
        head, start, end = self.head, self.start, self.end
        mark = head.find(b"\r\n\r\n", start, end)
        if mark < 0:
            if end == HEAD_ROOM:
                if start == 0:
                    self.abort(ValueError(f"request head longer than {HEAD_ROOM} bytes"))
                    return
                self.view[: end - start] = self.view[start:end]
                self.start, self.end = 0, end - start
            return
        body = mark + 4
        parsed = Head()
        self.owner.parser(parsed).feed_data(self.view[start:body])
        length = parsed.length
        into = self.body
        if not parsed.done or length < 0 or into is None or length > len(into):
            self.abort(ValueError("a request without a Content-Length that fits the buffer"))
            return
        have = min(end - body, length)
        into[:have] = self.view[body : body + have]
        self.start, self.end = (body + have, end) if body + have < end else (0, 0)
        self.length, self.got = length, have
        if have == length:
            self.answered()

    def answered(self) -> None:
        """The body is in: check where it ended, answer, and read the next head."""
        into, length = self.body, self.length
        self.length, self.body = -1, None
        assert into is not None and self.transport is not None
        if length and into[length - 1] != 0xFF:
            into.release()
            self.abort(ValueError("a request body did not end where its Content-Length said"))
            return
        into.release()
        self.transport.write(RESPONSE)

    def abort(self, exc: BaseException) -> None:
        if self.exchange is not None:
            self.exchange.fail(exc)
        if self.transport is not None:
            self.transport.close()


class BufferedServer(_Reader, asyncio.BufferedProtocol):
    """The loop reads straight into the buffer this protocol hands out (``get_buffer``): the
    head buffer, then the request's body buffer, fresh or pooled."""

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.length >= 0:
            assert self.body is not None
            return self.body[self.got : self.length]
        return self.view[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self.length >= 0:
            self.got += nbytes
            if self.got == self.length:
                self.answered()
            return
        self.end += nbytes
        self.headed()


class DataServer(_Reader, asyncio.Protocol):
    """The loop reads into a bytes object of its own per read (``data_received``), which this
    protocol copies into the head buffer and the request's body buffer."""

    def data_received(self, data: bytes) -> None:
        with memoryview(data) as rest:
            while rest:
                if self.length >= 0:
                    assert self.body is not None
                    take = min(len(rest), self.length - self.got)
                    self.body[self.got : self.got + take] = rest[:take]
                    self.got += take
                    rest = rest[take:]
                    if self.got == self.length:
                        self.answered()
                    continue
                take = min(len(rest), HEAD_ROOM - self.end)
                if take == 0:
                    self.abort(ValueError(f"request head longer than {HEAD_ROOM} bytes"))
                    return
                self.view[self.end : self.end + take] = rest[:take]
                self.end += take
                rest = rest[take:]
                self.headed()


class AsyncHttpBuffers(Scenario):
    """http-buffers on asyncio: each task is a client of a keep-alive connection to a server
    on the same event loop; the server reads each request's body into a fresh ``size``-byte
    buffer (unpooled) or one from the pool. ``read=buffered`` reads with
    ``BufferedProtocol.get_buffer`` (the loop's ``recv_into`` lands in that buffer);
    ``read=data_received`` with ``Protocol.data_received`` (the loop allocates a bytes object a
    read, copied into the buffer)."""

    name = "async-http-buffers"
    description = (
        "asyncio loopback HTTP/1.1 server: each `size`-byte request body read into a buffer; "
        "read=buffered|data_received, tls=off|on"
    )
    params = {"size": 64 * 1024, "tls": "off", "read": "buffered", "timeout": 10.0, "port": 0}
    choices = {"tls": ("off", "on"), "read": ("buffered", "data_received")}
    by_default = False

    async def setup(self) -> None:  # type: ignore[override]
        try:
            import httptools
        except ImportError:
            raise SkipScenario(
                "async-http-buffers parses with httptools: pip install 'poolbench[http]'"
            ) from None
        self.parser: Any = httptools.HttpRequestParser
        self.request = request_for(self.params["size"])
        self.server_tls: ssl.SSLContext | None = None
        self.client_tls: ssl.SSLContext | None = None
        if self.params["tls"] == "on":
            self.server_tls, self.client_tls = tls_contexts()
        self.idle: list[Exchange] = []
        self.exchanges: list[Exchange] = []
        self.pending: dict[int, asyncio.Future[_Reader]] = {}
        self.arrived: dict[int, _Reader] = {}
        shape = BufferedServer if self.params["read"] == "buffered" else DataServer
        loop = asyncio.get_running_loop()
        port = self.params["port"]
        try:
            self.server = await loop.create_server(
                lambda: shape(self), "127.0.0.1", port, ssl=self.server_tls, backlog=1024
            )
        except OSError as exc:
            raise ConnectionError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        self.address = self.server.sockets[0].getsockname()[:2]

    def accepted(self, port: int, server: _Reader) -> None:
        """The server side of a connection was made: hand it to the client that opened it."""
        waiter = self.pending.pop(port, None)
        if waiter is None:
            self.arrived[port] = server  # before its client knew its own port
        elif not waiter.done():
            waiter.set_result(server)

    async def open(self) -> Exchange:
        """A new connection and its server side (made in calibration's first batch, never timed)."""
        loop = asyncio.get_running_loop()
        exchange = Exchange(self.params["timeout"])
        transport, client = await loop.create_connection(
            lambda: _Client(exchange),
            *self.address,
            ssl=self.client_tls,
            server_hostname="127.0.0.1" if self.client_tls else None,
        )
        exchange.client = client
        self.exchanges.append(exchange)
        port = transport.get_extra_info("sockname")[1]
        early = self.arrived.pop(port, None)
        if early is not None:
            server = early
        else:
            found = self.pending[port] = loop.create_future()
            try:
                server = await asyncio.wait_for(found, exchange.timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"the server did not accept within timeout={exchange.timeout:g} s"
                ) from None
        server.exchange, exchange.server = exchange, server
        return exchange

    def send(self, exchange: Exchange) -> None:
        """Write one request (a test's misbehaving client overrides it)."""
        assert exchange.client is not None and exchange.client.transport is not None
        exchange.client.transport.write(self.request)  # type: ignore[attr-defined]

    async def run(  # type: ignore[override]
        self, n: int, get: Callable[[], Any], put: Callable[[Any], Any] | None
    ) -> None:
        exchange = self.idle.pop() if self.idle else await self.open()
        request = functools.partial(self.ask, exchange, asyncio.get_running_loop())
        try:
            # One loop per shape, chosen here: a branch inside the loop would be timed on the
            # pooled side only (as Scenario.run_async does).
            if put is None:
                for _ in repeat(None, n):
                    await request(get())
            elif awaits(get):  # bounded: callers queue
                for _ in repeat(None, n):
                    buf = await get()
                    await request(buf)
                    put(buf)
            else:
                for _ in repeat(None, n):
                    buf = get()
                    await request(buf)
                    put(buf)
        except BaseException:
            exchange.close()  # a connection whose request failed is not reused
            raise
        self.idle.append(exchange)

    async def ask(self, exchange: Exchange, loop: asyncio.AbstractEventLoop, buf: bytearray) -> None:
        """One request whose body the server reads into ``buf``; its response awaited."""
        server = exchange.server
        assert server is not None
        server.body = memoryview(buf)
        waiter = exchange.waiter = loop.create_future()
        self.send(exchange)
        timer = loop.call_later(exchange.timeout, _expire, waiter, exchange.timeout)
        try:
            await waiter
        finally:
            timer.cancel()

    def new(self) -> bytearray:
        return bytearray(self.params["size"])

    def fingerprint(self, buf: bytearray) -> int:
        return len(buf)  # every request overwrites what it reads: leftover bytes are expected

    async def teardown(self) -> None:  # type: ignore[override]
        for exchange in self.exchanges:
            exchange.close()
        self.server.close()
        await self.server.wait_closed()
        for _ in range(3):  # let the transports' close callbacks run: no socket outlives the cell
            await asyncio.sleep(0)


def _expire(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(f"no response within timeout={timeout:g} s"))
