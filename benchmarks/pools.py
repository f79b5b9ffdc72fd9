"""Get+put pairs of every pool strategy against the floor, a bare local list pop/append pair.

    python benchmarks/pools.py [--repeats 9] [--pairs 200000] [--threads 1,2,4,8]

Single thread: all variants interleaved in one process, repeat after repeat, so each ratio to
the floor is taken under the same conditions; the median of the repeats is printed. Then
throughput with 1..8 threads sharing one pool (each thread: get, put, in a loop), against the
floor's own scaling (each thread its own list). Run it under each build (GIL, free-threaded).
Ratios, not absolute times, are what carries from one machine to another.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

from poolbench.pools import checked, create_pool


def floor_pairs(n: int) -> float:
    items = [[]]
    pop, append = items.pop, items.append
    start = time.perf_counter_ns()
    for _ in repeat(None, n):
        obj = pop()
        append(obj)
    return (time.perf_counter_ns() - start) / n


def pool_pairs(pool: Any, n: int) -> float:
    get, put = pool.get, pool.put
    put(get())
    start = time.perf_counter_ns()
    for _ in repeat(None, n):
        obj = get()
        put(obj)
    return (time.perf_counter_ns() - start) / n


def python_reset(obj: list[Any]) -> None:
    obj.clear()


VARIANTS: dict[str, Callable[[], Any]] = {
    "none": lambda: create_pool("none", list),
    "sync": lambda: create_pool("sync", list, sharded=False),
    "sync sharded": lambda: create_pool("sync", list, sharded=True),
    "freelist": lambda: create_pool("freelist", list),
    "bounded": lambda: create_pool("bounded", list, max_size=8),
    "locked": lambda: create_pool("locked", list),
    "queue": lambda: create_pool("queue", list),
    "sync reset=list.clear": lambda: create_pool("sync", list, sharded=False, reset=list.clear),
    "freelist reset=list.clear": lambda: create_pool("freelist", list, reset=list.clear),
    "sync reset=def": lambda: create_pool("sync", list, sharded=False, reset=python_reset),
    "freelist reset=def": lambda: create_pool("freelist", list, reset=python_reset),
    **{
        f"{name} checked {level}": (lambda make=make, level=level: checked(make(), level=level))
        for level in ("simple", "advanced", "paranoid")
        for name, make in (
            ("sync", lambda: create_pool("sync", list, sharded=False)),
            ("freelist", lambda: create_pool("freelist", list)),
        )
    },
}
"""The checked rows are the levels of ``POOLBENCH_CHECK`` (paranoid is the doctor's); the README's
costs per level come from them, read against the unchecked row of the same pool."""


def single_thread(repeats: int, pairs: int) -> None:
    samples: dict[str, list[float]] = {"floor": [], **{name: [] for name in VARIANTS}}
    pools = {name: make() for name, make in VARIANTS.items()}
    for _ in range(repeats):
        samples["floor"].append(floor_pairs(pairs))
        for name, pool in pools.items():
            samples[name].append(pool_pairs(pool, pairs))
    floor = statistics.median(samples["floor"])
    print(f"single thread: median of {repeats} repeats of {pairs:,} get+put pairs\n")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print("| strategy | ns per pair | x floor | x unchecked |")
    print("|---|--:|--:|--:|")
    for name, median in medians.items():
        # Against the unchecked pool of the same repeat (paired, as poolbench's own speedups are):
        # a slow moment of the machine then moves both sides of each ratio.
        base = samples.get(name.split(" checked ")[0]) if " checked " in name else None
        ratios = [c / u for c, u in zip(samples[name], base, strict=True)] if base else []
        vs = f"{statistics.median(ratios):.2f}" if ratios else ""
        print(f"| {name} | {median:.1f} | {median / floor:.2f} | {vs} |")


def _rate(make: Callable[[], tuple[Any, Any]], threads: int, pairs: int) -> float:
    """Total get+put pairs per second of ``threads`` threads, each reading ``make()`` itself."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        get, put = make()  # in the thread: a sharded pool gives each thread its own functions
        barrier.wait()
        put(get())
        for _ in repeat(None, pairs):
            obj = get()
            put(obj)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return threads * pairs / (time.perf_counter() - start)


def _floor_accessors() -> tuple[Any, Any]:
    items: list[Any] = [[]]
    return items.pop, items.append


def threaded(threads_list: list[int], pairs: int, repeats: int) -> None:
    """Throughput of threads sharing one pool, against the floor: each thread its own list, so
    nothing is shared. The floor's own scaling is the reference, not ``threads``x: what one
    process gets from more threads here (the interpreter, the machine) is what a pool could."""
    names = ["sync", "sync sharded", "freelist", "bounded", "locked", "queue"]
    if threads_list == [1]:
        return
    rates: dict[str, dict[int, list[float]]] = {n: {t: [] for t in threads_list} for n in ["floor", *names]}
    for _ in range(repeats):  # interleaved: a slow minute touches every row alike
        for name in rates:
            for threads in threads_list:
                if name == "floor":
                    make: Callable[[], tuple[Any, Any]] = _floor_accessors
                else:
                    pool = (
                        VARIANTS[name]()
                        if name != "bounded"
                        else create_pool("bounded", list, max_size=threads)
                    )
                    make = lambda pool=pool: (pool.get, pool.put)  # noqa: E731
                rates[name][threads].append(_rate(make, threads, pairs))
    last = threads_list[-1]
    print(f"\nthreads sharing one pool: get+put pairs per second, all threads together (median of {repeats};")
    print(f"each thread {pairs:,} pairs; floor: each thread its own list)\n")
    print(
        "| strategy | "
        + " | ".join(f"{t} thr" for t in threads_list)
        + f" | {last} thr / 1 thr | vs floor's |"
    )
    print("|---|" + "--:|" * (len(threads_list) + 2))
    floor_scaling = statistics.median(rates["floor"][last]) / statistics.median(rates["floor"][1])
    for name, by_threads in rates.items():
        medians = [statistics.median(by_threads[t]) for t in threads_list]
        scaling = medians[-1] / medians[0]
        cells = " | ".join(f"{r / 1e6:.2f}M" for r in medians)
        print(f"| {name} | {cells} | {scaling:.2f} | {scaling / floor_scaling:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--threads", default="1,2,4,8")
    args = parser.parse_args()
    single_thread(args.repeats, args.pairs)
    threaded([int(t) for t in args.threads.split(",")], args.pairs // 2, max(3, args.repeats // 2))


if __name__ == "__main__":
    main()
