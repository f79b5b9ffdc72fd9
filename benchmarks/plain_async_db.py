"""An independent plain loop beside `async-db`: the same point query, per request, with asyncpg,
timed with nothing of poolbench's (no harness, no pools of its own), one task.

    POOLBENCH_PG_DSN=postgresql://... python benchmarks/plain_async_db.py [--requests 2000]

Prints µs per request for: connect per request; a plain list of connections (take, query, give
back: what AsyncBoundedPool does at one task); asyncpg's pool with its default release (which
resets the connection with a query); asyncpg's pool with that reset turned off. The ratios are what
`poolbench run async-db -c 1 -P none,bounded,asyncpg` should find.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

SQL = "select name, qty from poolbench_async_items where id = $1"


async def main(requests: int) -> None:
    import asyncpg

    dsn = os.environ["POOLBENCH_PG_DSN"]
    seed = await asyncpg.connect(dsn)
    await seed.execute(
        "create table if not exists poolbench_async_items (id integer primary key, name text, qty integer)"
    )
    await seed.execute("insert into poolbench_async_items select i, 'item ' || i, i % 7 "
                       "from generate_series(0, 999) i on conflict do nothing")  # fmt: skip
    await seed.close()

    async def per_request(n: int) -> None:
        for i in range(n):
            conn = await asyncpg.connect(dsn)
            await conn.fetchrow(SQL, i % 1000)
            await conn.close()

    free: list[asyncpg.Connection] = [await asyncpg.connect(dsn)]

    async def free_list(n: int) -> None:
        for i in range(n):
            conn = free.pop()
            await conn.fetchrow(SQL, i % 1000)
            free.append(conn)

    async def no_reset(conn: asyncpg.Connection) -> None:
        pass

    pools = {
        "asyncpg pool": await asyncpg.create_pool(dsn, min_size=1, max_size=4),
        "asyncpg pool, reset=None": await asyncpg.create_pool(dsn, min_size=1, max_size=4, reset=no_reset),
    }

    def through(pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
        async def run(n: int) -> None:
            for i in range(n):
                conn = await pool.acquire()
                await conn.fetchrow(SQL, i % 1000)
                await pool.release(conn)

        return run

    ways = {"connect per request": per_request, "plain free list": free_list,
            **{name: through(pool) for name, pool in pools.items()}}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(5):  # rounds, interleaved: a slow moment of the machine hits every way
        for name, run in ways.items():
            n = requests // 20 if name == "connect per request" else requests
            start = time.perf_counter()
            await run(n)
            times[name].append((time.perf_counter() - start) / n * 1e6)
    base = sorted(times["connect per request"])[2]
    for name, values in times.items():
        median = sorted(values)[2]
        print(f"{name:28s} {median:9.1f} µs/request  {base / median:6.1f}x")
    for pool in pools.values():
        await pool.close()
    await free[0].close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
