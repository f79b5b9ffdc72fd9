"""A small service loop for `poolbench profile` (README, tests): a 64 KiB buffer per request, and
a cache that only grows.

    poolbench profile tests/data/service_loop.py
"""

import hashlib

cache = {}


def handle(request):
    buf = bytearray(64 * 1024)  # BUFFER: one per request, dropped at the end of it
    buf[:8] = request.to_bytes(8, "little")
    digest = hashlib.sha1(buf).digest()
    cache[request] = bytes(1000) + digest  # CACHE: kept for good
    return digest


for i in range(1500):
    handle(i)
