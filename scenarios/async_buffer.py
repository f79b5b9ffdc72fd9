"""An asyncio request handler: wait for the request, read it into a buffer, parse its header."""

from __future__ import annotations

import asyncio

from .bytes_buffer import BytesBuffer


class AsyncBuffer(BytesBuffer):
    """The async counterpart of bytes-buffer (same request, buffer and header): each operation
    first awaits its request once (a yield to the event loop, as a socket read that has to wait
    does). Nothing to install: the request is in memory."""

    name = "async-buffer"
    description = "an asyncio handler: await the request, read it into a `size`-byte buffer, parse its header"

    async def use(self, buf: bytearray) -> None:  # type: ignore[override]
        await asyncio.sleep(0)  # the request arrives: other tasks run meanwhile
        BytesBuffer.use(self, buf)
