"""``--scaffold NAME``: a scenario file for the best candidate, ready for ``poolbench run``."""

from __future__ import annotations

import linecache
import os
from pathlib import Path

from ..errors import UsageError
from ._model import Site


def _kind_of(site: Site) -> str:
    filename, _, line = site.site.rpartition(":")
    text = linecache.getline(filename, int(line)) if line.isdigit() else ""
    for kind in ("bytearray", "bytes", "list", "dict"):
        if f"{kind}(" in text:
            return kind
    if "[" in text and "]" in text and "=" in text:
        return "list"
    if "{" in text and "}" in text:
        return "dict"
    return "bytearray"


def _buffer_size(size: int) -> int:
    """The size a buffer was asked for: one visit of ``bytearray(n)`` allocates the object (56 B)
    and ``n + 1`` bytes; a power of two a little below is what was meant."""
    if size > 64:
        power = 1 << (size.bit_length() - 1)
        if 0 <= size - power <= max(64, power // 16):
            return power
    return size


def _check_name(name: str) -> None:
    if not name.replace("-", "_").isidentifier() or name.startswith("-"):
        raise UsageError(f"--scaffold takes a name like my-buffer, not {name!r}")


def check_scaffold_name(name: str) -> Path:
    """The file ``--scaffold NAME`` would write, checked before anything runs."""
    _check_name(name)
    path = Path("scenarios") / f"{name.replace('-', '_')}.py"
    if path.exists():
        raise UsageError(f"{path} exists: choose another --scaffold name or remove it")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"{path.parent} is a file: --scaffold writes into a scenarios folder there")
    return path


def scaffold(site: Site, name: str) -> str:
    """The source of a scenario whose ``new()`` makes an object like ``site``'s."""
    _check_name(name)
    class_name = "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)
    kind = _kind_of(site)
    size = _buffer_size(site.typical_size)
    if kind in ("bytearray", "bytes"):
        new = 'return bytearray(self.params["size"])'
        use = (
            "# The work your code does with the object. Here: fill it, as a read would.\n"
            "        with memoryview(buf) as view:\n"
            "            view[: len(self.payload)] = self.payload"
        )
        setup = '        self.payload = bytes(range(256)) * (self.params["size"] // 256)\n'
        params, annotation = f'{{"size": {size}}}', "bytearray"
    else:
        new = f"return {kind}()"
        fill = "buf.extend(range(16))" if kind == "list" else "buf.update(zip(range(16), range(16)))"
        use = f"# The work your code does with the object. Here: fill it.\n        {fill}"
        setup = ""
        params, annotation = "{}", kind
    setup_method = f"    def setup(self) -> None:\n{setup}\n" if setup else ""
    reset = (
        "buf.clear()" if kind in ("list", "dict") else "pass  # a buffer the next read overwrites needs none"
    )
    return f'''"""A pooling candidate found by `poolbench profile`.

Site: {site.site} in {site.function}
{site.allocations:,} allocations, {site.bytes:,} B, {site.short_lived_share:.0%} short-lived; typical size {site.typical_size:,} B.

Measure it:  poolbench run {name} --scenarios-dir scenarios --pool none,sync,freelist
"""

from __future__ import annotations

from poolbench import Scenario


class {class_name}(Scenario):
    """Objects like the ones made at {os.path.basename(site.site)} ({site.function})."""

    name = "{name}"
    description = "objects like those made at {os.path.basename(site.site)}"
    params = {params}

{setup_method}    def new(self) -> {annotation}:
        # Make the object as {site.function}() does at {site.site}.
        {new}

    def use(self, buf: {annotation}) -> None:
        {use}

    # Define reset() if use() leaves state the next user must not see; the pools call it once
    # per reuse, and `poolbench doctor {name}` reports dirty reuse when it is missing.
    # def reset(self, buf: {annotation}) -> None:
    #     {reset}
'''
