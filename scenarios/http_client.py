"""HTTP client connections: a new connection per request, or a kept-alive one from a pool."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from poolbench import Scenario, SkipScenario

from .db_connections import DbConnections
from .http_buffers import authority

START_SECONDS = 30.0
"""How long setup waits for the server process to say its port."""

_CLIENTS = ("http.client", "urllib3", "httpx")
_PLUGINS = {"urllib3": "urllib3", "httpx": "httpx"}
"""The pool plugin of each client library: it takes that library's connections only."""


class HttpClient(Scenario):
    """One request: GET a `size`-byte response from a loopback HTTP/1.1 server (a process of its
    own). Unpooled, every request opens a connection (TCP, and TLS with tls=on) and closes it;
    pooled, it takes a kept-alive one."""

    name = "http-client"
    description = "per request: connect, GET, close (unpooled) vs a kept-alive connection; client=http.client|urllib3|httpx"
    params = {"size": 1024, "tls": "off", "client": "http.client", "timeout": 10.0}
    choices = {"tls": ("off", "on"), "client": _CLIENTS}
    by_default = False

    def setup(self) -> None:
        client = self.params["client"]
        if client != "http.client":
            try:
                __import__(client)
            except ImportError:
                raise SkipScenario(f"client={client} needs {client}: pip install 'poolbench[http]'") from None
        self.server = Server(self.params["size"], self.params["tls"] == "on", self.params["timeout"])
        self.host, self.port, self.url = "127.0.0.1", self.server.port, self.server.url
        self.client_tls = self.server.client_tls
        self._new = self._maker(client)
        self._use: Callable[[Any], None] = getattr(self, "_use_" + client.replace(".", "_"))

    def _maker(self, client: str) -> Callable[[], Any]:
        host, port, timeout, tls = self.host, self.port, self.params["timeout"], self.client_tls
        if client == "http.client":
            import http.client

            if tls is None:
                return lambda: http.client.HTTPConnection(host, port, timeout=timeout)
            return lambda: http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
        if client == "urllib3":
            import urllib3.connection

            if tls is None:
                return lambda: urllib3.connection.HTTPConnection(host, port, timeout=timeout)
            return lambda: urllib3.connection.HTTPSConnection(host, port, timeout=timeout, ssl_context=tls)
        import httpx

        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        return lambda: httpx.Client(verify=tls or False, timeout=timeout, limits=limits)

    def new(self) -> Any:
        """A connection of the client library (not yet connected: its first request connects)."""
        return self._new()

    def use(self, conn: Any) -> None:
        try:
            self._use(conn)
        except TimeoutError:
            raise TimeoutError(f"no response within timeout={self.params['timeout']:g} s") from None

    def _check(self, status: int, body: bytes) -> None:
        if status != 200 or len(body) != self.params["size"]:
            raise ValueError(f"unexpected response: status {status}, {len(body)} bytes")

    def _use_http_client(self, conn: Any) -> None:
        conn.request("GET", "/")
        response = conn.getresponse()
        self._check(response.status, response.read())

    def _use_urllib3(self, conn: Any) -> None:
        conn.request("GET", "/")
        response = conn.getresponse()  # urllib3's: the body is read in (preload_content)
        self._check(response.status, response.data)

    def _use_httpx(self, client: Any) -> None:
        import httpx

        try:
            response = client.get(self.url)
        except httpx.TimeoutException:
            raise TimeoutError from None
        self._check(response.status_code, response.content)

    run = DbConnections.run  # connect per request unpooled (closed after), a pooled connection otherwise

    def fingerprint(self, conn: Any) -> Any:
        return type(conn).__name__  # a kept-alive connection carries no request state between uses

    def counters(self) -> dict[str, int]:
        """The connections the server accepted: reported per 1,000 requests."""
        return {"connections": self.server.accepted()}

    def pool_options(self, strategy: str, threads: int) -> dict[str, Any]:
        client = self.params["client"]
        for other, plugin in _PLUGINS.items():
            if strategy == plugin and other != client:
                raise SkipScenario(
                    f"pool={plugin} takes {other}'s connections: run it with -p client={other}"
                )
        if strategy in _PLUGINS:
            return {"max_size": threads, "url": self.url, "tls": self.client_tls}
        return super().pool_options(strategy, threads)

    def teardown(self) -> None:
        # Connections the pools still held were dropped with them; a TLS one (httpx's client)
        # sits in a reference cycle until a collection closes its socket: collect now.
        gc.collect()
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()


def certificates(folder: str) -> tuple[list[str], ssl.SSLContext]:
    """:func:`authority`'s certificate written for the server process; the client's context."""
    issued, client = authority()
    chain, key = os.path.join(folder, "chain.pem"), os.path.join(folder, "key.pem")
    issued.private_key_pem.write_to_path(key)
    with open(chain, "wb") as out:
        for blob in issued.cert_chain_pems:
            out.write(blob.bytes())
    return [chain, key], client


class Server:
    """The loopback HTTP/1.1 server, a child process (so its work is not the measured
    process's): it answers every request with ``size`` bytes, keeps connections alive, and
    exits when its standard input closes (this process stopped it, or died)."""

    def __init__(self, size: int, tls: bool, timeout: float) -> None:
        self.folder = tempfile.mkdtemp(prefix=f"poolbench-http-{os.getpid()}-")  # its certificate
        self.client_tls: ssl.SSLContext | None = None
        certs: list[str] = []
        if tls:
            try:
                certs, self.client_tls = certificates(self.folder)
            except BaseException:
                shutil.rmtree(self.folder, ignore_errors=True)
                raise
        code = "from poolbench.scenarios.http_client import serve; serve()"
        self.process = subprocess.Popen(
            # -P, as the workers: the working directory is not on the path (a checkout's
            # poolbench/ folder has no scenarios package: the built-ins install from scenarios/)
            [sys.executable, "-P", "-c", code, str(size), *certs],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(START_SECONDS)
        text = line[0].decode().strip() if line else ""
        if not text.isdigit():
            self.process.kill()
            err = self.process.communicate()[1].decode(errors="replace").strip()
            self.stop()
            raise ConnectionError(
                f"the HTTP server did not start: {err.splitlines()[-1] if err else 'no port'}"
            )
        self.port = int(text)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/"

    def accepted(self) -> int:
        """Connections the server accepted so far (it answers a line on stdin with the count)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def stop(self) -> None:
        process = self.process
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def serve() -> None:
    """The server process: ``python -c ... SIZE [CHAIN KEY]``; prints its port."""
    size = int(sys.argv[1])
    tls = None
    if len(sys.argv) > 3:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(sys.argv[2], sys.argv[3])
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size
    )
    response += b"x" * size
    asyncio.run(_serve(response, tls))


async def _serve(response: bytes, tls: ssl.SSLContext | None) -> None:
    loop = asyncio.get_running_loop()
    accepted = [0]

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport
            self.pending = b""
            accepted[0] += 1

        def data_received(self, data: bytes) -> None:
            data = self.pending + data
            requests = data.count(b"\r\n\r\n")  # GETs without bodies: a blank line ends each
            self.pending = data[data.rfind(b"\r\n\r\n") + 4 :] if requests else data
            if requests:
                self.transport.write(response * requests)

    server = await loop.create_server(Answer, "127.0.0.1", 0, ssl=tls, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():  # a line asks for the count; the end of stdin stops the server
        sys.stdout.write(f"{accepted[0]}\n")
        sys.stdout.flush()
    server.close()
