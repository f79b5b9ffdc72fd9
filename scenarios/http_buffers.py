"""HTTP/1.1 request bodies read off a loopback socket: a fresh buffer per request or a pooled one."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from poolbench import Scenario, SkipScenario

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
HEAD_ROOM = 8192
"""The per-connection buffer a request's head is read into (its body may start in it too)."""


class Head:
    """What the parser's callbacks leave: the body's length, and whether the head ended."""

    __slots__ = ("done", "length")

    def __init__(self) -> None:
        self.length = -1
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-length":
            self.length = int(value)

    def on_headers_complete(self) -> None:
        self.done = True


def request_for(size: int) -> bytes:
    """One request of the client: a head and a ``size``-byte body whose last byte says where it ended."""
    head = (
        f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: poolbench\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    body = bytes(range(256)) * (size // 256 + 1)
    return head + body[: size - 1] + b"\xff" if size else head


def client_loop(sock: socket.socket, request: bytes) -> None:
    """The client of one connection, on its own thread: send a request, read the response,
    again, until the server side closes. It allocates nothing per request (a prebuilt request, a
    reused response buffer) over plain TCP, so what a cell counts is the server's."""
    response = bytearray(len(RESPONSE))
    view = memoryview(response)
    want = len(RESPONSE)
    try:
        while True:
            sock.sendall(request)
            got = sock.recv_into(response)
            while 0 < got < want:
                n = sock.recv_into(view[got:])
                got = got + n if n else 0
            if got == 0:
                return
    except (OSError, ValueError):
        return  # the server side closed: the cell is over (or failed, and says why)
    finally:
        view.release()
        sock.close()


class Connection:
    """The server side of one keep-alive connection, read by one measured thread, and the client
    thread that feeds it."""

    def __init__(self, server: socket.socket, client: threading.Thread, parser: Any, timeout: float) -> None:
        self.sock = server
        self.timeout = timeout
        self.client_address: tuple[str, int] = ("", 0)
        """Where this connection's client thread's socket is bound (its two ends are each other's)."""
        self.client = client
        self.parser = parser
        self.head = bytearray(HEAD_ROOM)
        self.view = memoryview(self.head)
        self.start = self.end = 0  # bytes [start:end) of head are read and not yet handled

    def serve(self, buf: bytearray) -> int:
        """Read one request: its head into the connection's head buffer, its body into ``buf``
        (what the head buffer holds of it copied, the rest with ``recv_into`` through a
        memoryview); answer it. The body's length."""
        sock, head, view = self.sock, self.head, self.view
        start, end = self.start, self.end
        mark = head.find(b"\r\n\r\n", start, end)
        while mark < 0:
            if start:  # move the partial head to the front, then read more after it
                view[: end - start] = view[start:end]
                start, end = 0, end - start
            if end == HEAD_ROOM:
                raise ValueError(f"request head longer than {HEAD_ROOM} bytes")
            n = sock.recv_into(view[end:])
            if not n:
                raise ConnectionError("the client closed the connection before a request's head ended")
            end += n
            mark = head.find(b"\r\n\r\n", max(start, end - n - 3), end)
        body = mark + 4
        parsed = Head()
        self.parser(parsed).feed_data(view[start:body])
        length = parsed.length
        if not parsed.done or length < 0:
            raise ValueError("a request without Content-Length")
        if length > len(buf):
            raise ValueError(f"a {length}-byte body does not fit the {len(buf)}-byte buffer")
        have = min(end - body, length)
        with memoryview(buf) as into:
            into[:have] = view[body : body + have]
            got = have
            while got < length:
                n = sock.recv_into(into[got:length])
                if not n:
                    raise ConnectionError(
                        f"the client closed the connection mid-body: {got} of {length} bytes"
                    )
                got += n
        if length and buf[length - 1] != 0xFF:
            raise ValueError("a request body did not end where its Content-Length said")
        self.start, self.end = (body + have, end) if body + have < end else (0, 0)
        sock.sendall(RESPONSE)
        return length

    def shut(self) -> None:
        """End the server side: the client's next read sees the end of the stream."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.shut()
        self.view.release()
        self.sock.close()
        self.client.join(self.timeout)


class HttpBuffers(Scenario):
    """A loopback HTTP/1.1 server: each measured thread serves one keep-alive connection, fed by
    a client thread; a request's body is read into a fresh ``size``-byte buffer (unpooled) or one
    from the pool, with ``recv_into`` through a memoryview."""

    name = "http-buffers"
    description = "a loopback HTTP/1.1 server reads each `size`-byte request body into a buffer; tls=off|on"
    params = {"size": 64 * 1024, "tls": "off", "timeout": 10.0, "port": 0}
    choices = {"tls": ("off", "on")}
    by_default = False

    def setup(self) -> None:
        try:
            import httptools
        except ImportError:
            raise SkipScenario("http-buffers parses with httptools: pip install 'poolbench[http]'") from None
        self.parser = httptools.HttpRequestParser
        self.request = request_for(self.params["size"])
        self.server_tls: ssl.SSLContext | None = None
        self.client_tls: ssl.SSLContext | None = None
        if self.params["tls"] == "on":
            self.server_tls, self.client_tls = tls_contexts()
        self.listener = listen(self.params["port"])
        self.local = threading.local()
        self.connections: list[Connection] = []
        self.lock = threading.Lock()

    def connection(self) -> Connection:
        """This thread's connection, opened on its first request (calibration's, never timed)."""
        conn: Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            # One thread at a time connects and accepts: two threads connecting together could
            # each accept the other's client, and a connection's two ends would not be its own.
            with self.lock:
                conn = self.local.conn = open_connection(
                    self.listener,
                    self.client,
                    self.parser,
                    self.params["timeout"],
                    self.server_tls,
                    self.client_tls,
                )
                self.connections.append(conn)
        return conn

    def client(self, sock: socket.socket) -> None:
        """What the client thread of a connection does with its socket (TLS-wrapped already)."""
        client_loop(sock, self.request)

    def teardown(self) -> None:
        for conn in self.connections:  # every server side first, then wait for the clients
            conn.shut()
        for conn in self.connections:
            conn.close()
        self.connections.clear()
        self.listener.close()

    def new(self) -> bytearray:
        return bytearray(self.params["size"])

    def fingerprint(self, buf: bytearray) -> int:
        return len(buf)  # every request overwrites what it reads: leftover bytes are expected

    def use(self, buf: bytearray) -> None:
        conn = self.connection()
        try:
            conn.serve(buf)
        except TimeoutError:
            raise TimeoutError(
                f"a socket waited more than timeout={self.params['timeout']:g} s for the other end"
            ) from None


def listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1, on ``port`` (0: one the OS picks)."""
    try:
        return socket.create_server(("127.0.0.1", port), backlog=1024)
    except OSError as exc:
        raise ConnectionError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None


def open_connection(
    listener: socket.socket,
    feed: Callable[[socket.socket], None],
    parser: Any,
    timeout: float,
    server_tls: ssl.SSLContext | None,
    client_tls: ssl.SSLContext | None,
) -> Connection:
    """Connect a client to ``listener``, accept it, start the client's thread (TLS handshakes on
    both sides, the client's on its thread) and return the server side."""
    client = socket.create_connection(listener.getsockname(), timeout=timeout)
    address = client.getsockname()  # before the client's thread wraps it (TLS detaches it)
    server, _ = listener.accept()
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)

    def run_client() -> None:
        sock = client
        if client_tls is not None:
            try:
                sock = client_tls.wrap_socket(client, server_hostname="127.0.0.1")
            except (OSError, ValueError):
                client.close()
                return
        feed(sock)

    thread = threading.Thread(target=run_client, name="poolbench-http-client", daemon=True)
    thread.start()
    if server_tls is not None:
        try:
            server = server_tls.wrap_socket(server, server_side=True)
        except (OSError, ValueError):
            server.close()
            thread.join(timeout)
            raise
    conn = Connection(server, thread, parser, timeout)
    conn.client_address = address
    return conn


def authority() -> tuple[Any, ssl.SSLContext]:
    """A throwaway certificate authority's certificate for 127.0.0.1 (trustme), and the client's
    context, which trusts that authority only."""
    try:
        import trustme
    except ImportError:
        raise SkipScenario(
            "tls=on makes its certificate with trustme: pip install 'poolbench[http]'"
        ) from None
    made = trustme.CA()
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    made.configure_trust(client)
    return made.issue_cert("127.0.0.1"), client


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The server's context (:func:`authority`'s certificate) and the client's."""
    issued, client = authority()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issued.configure_cert(server)
    return server, client
