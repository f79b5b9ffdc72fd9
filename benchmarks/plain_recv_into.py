"""The known answer beside `http-buffers`: `recv_into` a fresh vs a reused `bytearray` over a
loopback TCP connection, nothing of poolbench's.

A client thread sends `size`-byte messages; the reading thread reads each whole into a buffer
(a fresh `bytearray(size)` per message, or one reused) and answers with a few bytes, as a server
answers a request; rounds of the two interleaved, the median per message of each, and the
speedup: the median of the rounds' paired ratios fresh / reused. `--head` puts an HTTP head before each message and reads it first
into a head buffer of its own, as http-buffers' server reads a request. `--threads 2` runs two such connections at once (two readers, two
clients). `--tls` wraps both ends (a throwaway certificate from trustme).

    python benchmarks/plain_recv_into.py [--sizes 1KiB,64KiB,1MiB] [--threads 1] [--tls] [--head]
"""

from __future__ import annotations

import argparse
import socket
import ssl
import statistics
import sys
import threading
import time

ACK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def parse_size(text: str) -> int:
    units = {"kib": 1024, "mib": 1024 * 1024}
    for suffix, factor in units.items():
        if text.lower().endswith(suffix):
            return int(text[: -len(suffix)]) * factor
    return int(text)


def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    import trustme

    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    authority.configure_trust(client)
    return server, client


def pair(listener: socket.socket, message: bytes, contexts: tuple[ssl.SSLContext, ssl.SSLContext] | None):
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10.0)  # as http-buffers' sockets: a read polls, then reads

    def feed() -> None:
        sock = client if contexts is None else contexts[1].wrap_socket(client, server_hostname="127.0.0.1")
        ack = bytearray(len(ACK))
        try:
            while True:
                sock.sendall(message)
                got = 0
                while got < len(ACK):
                    n = sock.recv_into(memoryview(ack)[got:])
                    if not n:
                        return
                    got += n
        except OSError:
            return
        finally:
            sock.close()

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    if contexts is not None:
        server = contexts[0].wrap_socket(server, server_side=True)
    return server, thread


def head_for(size: int) -> bytes:
    return f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n".encode()


def read(sock: socket.socket, size: int, n: int, reuse: bool, head: bool = False) -> None:
    kept = bytearray(size)
    room = bytearray(8192)  # with --head: each message's head is read into this first
    ahead = memoryview(room)
    headlen = len(head_for(size))
    for _ in range(n):
        buf = kept if reuse else bytearray(size)
        with memoryview(buf) as view:
            got = 0
            if head:  # as a server reads a request: the head, and what came of the body with it
                end = 0
                while end < headlen:
                    step = sock.recv_into(ahead[end:])
                    if not step:
                        raise ConnectionError("the client closed mid-head")
                    end += step
                got = end - headlen
                view[:got] = ahead[headlen:end]
            while got < size:
                step = sock.recv_into(view[got:])
                if not step:
                    raise ConnectionError("the client closed mid-message")
                got += step
        sock.sendall(ACK)


def measure(
    size: int,
    threads: int,
    rounds: int,
    contexts: tuple[ssl.SSLContext, ssl.SSLContext] | None,
    head: bool = False,
) -> tuple[float, float, float]:
    """Median time per message fresh and reused, and the median of the rounds' paired ratios
    (fresh / reused, each pair taken back to back: the machine's slow minutes cancel)."""
    listener = socket.create_server(("127.0.0.1", 0))
    message = (head_for(size) if head else b"") + b"x" * size
    ends = [pair(listener, message, contexts) for _ in range(threads)]
    n = max(20, min(2000, (64 << 20) // max(size, 1) // 8))
    for sock, _ in ends:
        read(sock, size, n // 4, True, head)
        read(sock, size, n // 4, False, head)
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(rounds):
        for reuse in (True, False) if i % 2 else (False, True):
            workers = [threading.Thread(target=read, args=(sock, size, n, reuse, head)) for sock, _ in ends]
            start = time.perf_counter_ns()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            times[reuse].append((time.perf_counter_ns() - start) / (n * threads))
    for sock, thread in ends:
        sock.close()
        thread.join()
    listener.close()
    ratios = [fresh / reused for fresh, reused in zip(times[False], times[True], strict=True)]
    return statistics.median(times[False]), statistics.median(times[True]), statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1KiB,64KiB,1MiB")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--head", action="store_true", help="an HTTP head before each message, read first")
    args = parser.parse_args()
    contexts = tls() if args.tls else None
    print(
        f"Python {sys.version.split()[0]}; threads {args.threads}; tls {'on' if args.tls else 'off'}; head {'on' if args.head else 'off'}"
    )
    print(f"{'size':>8} {'fresh µs':>10} {'reused µs':>10} {'speedup':>8}")
    for text in args.sizes.split(","):
        size = parse_size(text)
        fresh, reused, ratio = measure(size, args.threads, args.rounds, contexts, args.head)
        print(f"{text:>8} {fresh / 1000:>10.2f} {reused / 1000:>10.2f} {ratio:>7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
