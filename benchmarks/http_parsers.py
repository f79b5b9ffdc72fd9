"""Which HTTP/1.1 parser `http-buffers` parses request heads with: h11 or httptools, measured.

The server reads each request's head, learns the body's length from it, and reads the body
itself with ``recv_into`` into the (pooled or fresh) buffer: the parser sees the head only, a
fresh parser per request (neither parser can hand a body to a caller's buffer: h11 copies every
body byte into its own buffer and returns ``Data`` events, httptools calls ``on_body`` with a
copy). Timed in interleaved rounds, the median per head, with the allocator calls per head counted
by memray (poolbench's counting).

    python benchmarks/http_parsers.py [--rounds 15] [--heads 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

HEAD = (
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: poolbench\r\n"
    b"Accept: */*\r\nContent-Type: application/octet-stream\r\nContent-Length: 65536\r\n\r\n"
)


def h11_parse() -> Callable[[bytes], int]:
    import h11

    def parse(head: bytes) -> int:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(head)
        event = conn.next_event()
        assert isinstance(event, h11.Request)
        for name, value in event.headers:
            if name == b"content-length":
                return int(value)
        return 0

    return parse


def httptools_parse() -> Callable[[bytes], int]:
    import httptools

    class Head:
        __slots__ = ("length",)

        def __init__(self) -> None:
            self.length = 0

        def on_header(self, name: bytes, value: bytes) -> None:
            if name.lower() == b"content-length":
                self.length = int(value)

    def parse(head: bytes) -> int:
        into = Head()
        httptools.HttpRequestParser(into).feed_data(head)
        return into.length

    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--heads", type=int, default=20000)
    args = parser.parse_args()
    parsers = {"h11": h11_parse(), "httptools": httptools_parse()}
    for parse in parsers.values():
        assert parse(HEAD) == 65536
    times: dict[str, list[float]] = {name: [] for name in parsers}
    for _ in range(args.rounds):
        for name, parse in parsers.items():
            start = time.perf_counter_ns()
            for _ in range(args.heads):
                parse(HEAD)
            times[name].append((time.perf_counter_ns() - start) / args.heads)
    allocs = {name: _allocations(parse) for name, parse in parsers.items()}
    print(f"Python {sys.version.split()[0]}; request head of {len(HEAD)} bytes, a fresh parser per head")
    print(f"{'parser':<10} {'ns/head (median)':>17} {'min-max':>15} {'allocs/head':>12}")
    for name in parsers:
        t = times[name]
        print(
            f"{name:<10} {statistics.median(t):>17,.0f} {min(t):>7,.0f}-{max(t):<7,.0f} {allocs[name]:>12.1f}"
        )
    fast = min(parsers, key=lambda name: statistics.median(times[name]))
    slow = max(parsers, key=lambda name: statistics.median(times[name]))
    ratio = statistics.median(times[slow]) / statistics.median(times[fast])
    print(f"{fast} parses a head {ratio:.1f}x faster than {slow}")
    return 0


def _allocations(parse: Callable[[bytes], int], n: int = 2000) -> float:
    """Allocator calls per head, counted by memray through poolbench's counting (NaN without it)."""
    from poolbench.counting import count_allocations
    from poolbench.timing import Team

    team = Team(1, time.perf_counter_ns)
    try:
        counted = count_allocations(team, lambda: [parse(HEAD) for _ in range(n)])
    finally:
        team.close()
    return float("nan") if counted is None else counted["allocations"] / n


if __name__ == "__main__":
    raise SystemExit(main())
