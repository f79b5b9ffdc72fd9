"""Valgrind's client requests from Python, for callgrind's instrumentation switch.

A client request is a fixed instruction sequence that does nothing on a real processor and that
Valgrind recognizes as a call into its tool (``valgrind.h``'s ``VALGRIND_DO_CLIENT_REQUEST``).
Python has no such call, so the sequence is written, as machine code, into a page of its own and
called through :mod:`ctypes`: on x86-64 only (other processors return ``None`` from
:func:`requests`, and poolbench counts with the instrumentation on from the start: the same counts,
more slowly). Outside Valgrind, each call returns its default and changes nothing.

Used by the counted process (``poolbench._counted_child``) to run its start-up, imports and each
scenario's setup uninstrumented (about 4x slower than native, instead of 50-100x with the cache
simulation) and switch callgrind on only around the operations it counts.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
from collections.abc import Callable

_TOOL_BASE = (ord("C") & 0xFF) << 24 | (ord("T") & 0xFF) << 16
"""``VG_USERREQ_TOOL_BASE('C', 'T')``: callgrind's requests (``callgrind.h``)."""
START_INSTRUMENTATION = _TOOL_BASE + 4
STOP_INSTRUMENTATION = _TOOL_BASE + 5
RUNNING_ON_VALGRIND = 0x1001

# x86-64 System V: request(args=%rdi, default=%rsi) -> %rax. valgrind.h's sequence reads the
# argument block's address in %rax and the default in %rdx, and leaves the result in %rdx.
_AMD64 = bytes.fromhex(
    "4889f8"  # mov rax, rdi
    "4889f2"  # mov rdx, rsi
    "48c1c703"  # rol rdi, 3    \
    "48c1c70d"  # rol rdi, 13    | the special-instruction preamble (a rotation by 128: no change)
    "48c1c73d"  # rol rdi, 61    |
    "48c1c733"  # rol rdi, 51   /
    "4887db"  # xchg rbx, rbx: "client request"
    "4889d0"  # mov rax, rdx
    "c3"  # ret
)

Request = Callable[[int], int]


def requests() -> Request | None:
    """A function that makes a client request (its code, no arguments) and returns the answer (0
    outside Valgrind); ``None`` where it cannot be built (not x86-64, or no executable page)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, AttributeError):  # W^X policies refuse a writable, executable page
        return None
    page.write(_AMD64)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    call = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64)(address)
    block = (ctypes.c_uint64 * 6)()

    def request(code: int) -> int:
        block[0] = code
        return int(call(ctypes.addressof(block), 0))

    request.page = page  # type: ignore[attr-defined]  # the code lives as long as the function
    return request
