"""An asyncio service for `poolbench profile` (README, tests): handlers run as tasks on one loop,
a 64 KiB buffer per request across an await, and a cache that only grows.

    poolbench profile tests/data/async_service.py
"""

import asyncio
import hashlib

cache = {}


async def handle(request):
    buf = bytearray(64 * 1024)  # BUFFER: one per request, dropped at the end of it
    buf[:8] = request.to_bytes(8, "little")
    await asyncio.sleep(0)
    digest = hashlib.sha1(buf).digest()
    cache[request] = bytes(1000) + digest  # CACHE: kept for good
    return digest


async def main():
    for start in range(0, 1500, 50):
        await asyncio.gather(*(handle(i) for i in range(start, start + 50)))


asyncio.run(main())
