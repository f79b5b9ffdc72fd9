"""HTTP-style request handling: read a payload into a buffer, parse a small header."""

from __future__ import annotations

import struct

from poolbench import Scenario

_HEADER = struct.Struct(">4sHHI")  # magic, version, flags, body length: 12 bytes


class BytesBuffer(Scenario):
    """Read a request of `size` bytes into a buffer (as readinto does) and parse its header."""

    name = "bytes-buffer"
    description = "read a request into a `size`-byte buffer via memoryview, parse its header"
    params = {"size": 64 * 1024}

    def setup(self) -> None:
        size = self.params["size"]
        header = _HEADER.pack(b"PBRQ", 1, 0, max(0, size - _HEADER.size))
        body = bytes(range(256)) * (size // 256 + 1)
        self.payload = memoryview((header + body)[:size])

    def new(self) -> bytearray:
        return bytearray(self.params["size"])

    # No reset: a reused buffer is overwritten by the next read, and clearing it costs more than
    # allocating a fresh zeroed one (measured: see the README). So for the doctor, a buffer's
    # state is its length: leftover bytes from the last request are expected.
    def fingerprint(self, buf: bytearray) -> int:
        return len(buf)

    def use(self, buf: bytearray) -> None:
        payload = self.payload
        n = len(payload)
        # What readinto/recv_into do: one copy into the caller's buffer. `buf[:] = payload`
        # would make a hidden temporary copy first; a memoryview slice assignment does not.
        with memoryview(buf) as view:
            view[:n] = payload
        magic, version, _flags, length = _HEADER.unpack_from(buf, 0)
        if magic != b"PBRQ" or version != 1 or length > n:
            raise ValueError("corrupt request header")
