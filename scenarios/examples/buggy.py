"""Deliberately buggy scenarios, one per kind of misuse `poolbench doctor` finds.

    poolbench doctor --scenarios-dir scenarios/examples bug-leak bug-double-put ...

Each marks its buggy line with `# BUG`; the doctor must name that line.
"""

from __future__ import annotations

from itertools import repeat

from poolbench import Scenario


class _ListScenario(Scenario):
    def new(self):
        return []

    def reset(self, obj):
        obj.clear()

    def use(self, obj):
        obj.append(1)


class Leak(_ListScenario):
    """Every tenth request forgets to give its list back."""

    name = "bug-leak"

    def run(self, n, get, put):
        for i in range(n):
            obj = get()  # BUG
            self.use(obj)
            if put is not None and i % 10:
                put(obj)


class DoublePut(_ListScenario):
    """An error path returns the object a second time."""

    name = "bug-double-put"

    def run(self, n, get, put):
        for i in range(n):
            obj = get()
            self.use(obj)
            if put is not None:
                put(obj)
                if i % 50 == 0:
                    put(obj)  # BUG


class ForeignPut(_ListScenario):
    """Objects made outside the pool are put into it."""

    name = "bug-foreign-put"

    def run(self, n, get, put):
        for _ in repeat(None, n):
            obj = get()
            self.use(obj)
            if put is not None:
                put(obj)
                put([])  # BUG


class DirtyReuse(Scenario):
    """No reset: the next request sees the last one's data."""

    name = "bug-dirty-reuse"

    def new(self):
        return {"user": None, "items": []}

    def use(self, request):
        request["user"] = "ada"
        request["items"].append(1)

    def run(self, n, get, put):
        for _ in repeat(None, n):
            request = get()  # BUG
            self.use(request)
            if put is not None:
                put(request)


class UseAfterPut(_ListScenario):
    """A response is written after its buffer went back to the pool."""

    name = "bug-use-after-put"

    def run(self, n, get, put):
        for _ in repeat(None, n):
            obj = get()
            self.use(obj)
            if put is not None:
                put(obj)  # BUG: the object is still used after this put()
            obj.append(2)  # the write; found before the next get hands it out


class Pinned(Scenario):
    """One huge request's buffer stays in the pool for ever."""

    name = "bug-pinned-bytes"

    def new(self):
        return bytearray(1024)

    def fingerprint(self, buf):
        return None  # contents are overwritten on every use: only memory is checked here

    def use(self, buf):
        buf[:4] = b"data"

    def run(self, n, get, put):
        for i in range(n):
            bufs = [get() for _ in range(8)]  # eight buffers in flight per request
            if i == 0:
                bufs[0].extend(bytes(4 * 1024 * 1024))  # grows one pooled buffer to 4 MiB
            for buf in bufs:
                self.use(buf)
            if put is not None:
                for buf in bufs:
                    put(buf)  # BUG: the 4 MiB buffer goes back to the pool with the others


class KeptReference(_ListScenario):
    """A handler keeps the list it was given and appends to it on the next request."""

    name = "bug-kept-reference"

    def setup(self):
        self.last = None

    def use(self, obj):
        if self.last is not None:
            self.last.append(2)  # the write through the reference kept from the last request
        obj.append(1)
        self.last = obj

    def run(self, n, get, put):
        for _ in repeat(None, n):
            obj = get()
            self.use(obj)
            if put is not None:
                put(obj)  # BUG: use() still holds this object and writes to it on the next call
