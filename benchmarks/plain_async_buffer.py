"""An independent plain loop beside `async-buffer`: C tasks on one asyncio loop, each handling
requests (a fresh `bytearray(size)` or one from a plain list; one `await asyncio.sleep(0)`; the
request copied in through a memoryview), timed with nothing of poolbench's.

    python benchmarks/plain_async_buffer.py [--size 65536] [--tasks 1,16,128] [--ops 64] [--rounds 15]
                                            [--view-payload]

Each round times fresh and reused back to back (the order alternates), each task running `--ops`
requests, once with a warm-up request per task before the clock starts and once without. It
prints µs per request and the speedup (fresh / reused, median of the rounds' ratios), and the
page faults a round takes. Without the warm-up request, every round starts from an empty heap:
the tasks of the round before dropped their buffers together, glibc gave the freed top of the
heap back to the system, and the first request of each task faults it in again; that cost,
spread over `--ops`, is what `poolbench run async-buffer` timed before its values began from
buffers in circulation.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from collections.abc import Callable
from itertools import repeat


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


Get = Callable[[], bytearray]
Put = Callable[[bytearray], None] | None


async def handler(n: int, get: Get, put: Put, payload: memoryview) -> None:
    for _ in repeat(None, n):
        buf = get()
        await asyncio.sleep(0)
        with memoryview(buf) as view:
            view[:] = payload
        if put is not None:
            put(buf)


async def round_of(tasks: int, ops: int, warm: bool, get: Get, put: Put, payload: memoryview) -> float:
    """One round: ``tasks`` handlers of ``ops`` requests each; µs per request."""
    spans = [(0, 0)] * tasks

    async def one(i: int) -> None:
        if warm:
            await handler(1, get, put, payload)
        start = time.perf_counter_ns()
        await handler(ops, get, put, payload)
        spans[i] = (start, time.perf_counter_ns())

    await asyncio.gather(*(one(i) for i in range(tasks)))
    return (max(e for _, e in spans) - min(s for s, _ in spans)) / (tasks * ops) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--tasks", default="1,16,128")
    parser.add_argument("--ops", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--view-payload", action="store_true", help="copy from a view into a larger object")
    args = parser.parse_args()
    size = args.size
    body = b"PBRQ" + bytes(range(256)) * (size // 256 + 1)
    # As async-buffer makes it (a bytes object of its own), or a view into a larger one: where the
    # source lies changes what copying it into a fresh buffer costs (see the README's modes).
    payload = memoryview(body)[:size] if args.view_payload else memoryview(body[:size])
    loop = asyncio.new_event_loop()
    print("| tasks | warm-up request | fresh µs | reused µs | speedup | page faults a round, fresh |")
    print("|--:|---|--:|--:|--:|--:|")
    for tasks in (int(t) for t in args.tasks.split(",")):
        free = [bytearray(size) for _ in range(tasks)]
        strategies: dict[bool, tuple[Get, Put]] = {
            False: (lambda: bytearray(size), None),
            True: (free.pop, free.append),
        }
        for warm in (True, False):

            def timed(
                pooled: bool,
                warm: bool = warm,
                tasks: int = tasks,
                kinds: dict[bool, tuple[Get, Put]] = strategies,
            ) -> tuple[float, int]:
                before = faults()
                us = loop.run_until_complete(round_of(tasks, args.ops, warm, *kinds[pooled], payload))
                return us, faults() - before

            timed(False), timed(True)
            fresh_us, reused_us, ratios, paged = [], [], [], []
            for r in range(args.rounds):
                order = (True, False) if r % 2 else (False, True)
                got = {pooled: timed(pooled) for pooled in order}
                fresh_us.append(got[False][0])
                reused_us.append(got[True][0])
                ratios.append(got[False][0] / got[True][0])
                paged.append(got[False][1])
            print(f"| {tasks} | {'yes' if warm else 'no'} | {statistics.median(fresh_us):.2f} | "
                  f"{statistics.median(reused_us):.2f} | {statistics.median(ratios):.2f}x | "
                  f"{statistics.median(paged)} |")  # fmt: skip


if __name__ == "__main__":
    main()
