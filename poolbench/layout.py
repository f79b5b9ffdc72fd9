"""Heap layout as a random variable (Mytkowicz et al., ASPLOS 2009; STABILIZER, ASPLOS 2013).

Where an object lands decides what copying it costs: a 64 KiB ``memcpy`` took ~32 µs when the
destination sat 16 bytes past the source modulo 4 KiB, ~2 µs otherwise, on this kind of machine.
Which address a buffer gets depends on everything the heap held before it, so without care one
process measures one accidental layout, and adding a pool to the run moves every other cell.

Each worker process therefore shifts its own layout by a seeded random amount, at the points that
decide the relative placement of a scenario's objects: before ``setup`` (what setup allocates)
and after it (what the operations allocate). The parent also pads the worker's environment, which
moves the stack. The seed is recorded with the process's values, so a layout can be replayed.
"""

from __future__ import annotations

import random

PAD_ENV = "POOLBENCH_LAYOUT_PAD"


def environment_padding(seed: int) -> str:
    """A string of seeded random length (0-4 KiB) for the worker's environment."""
    return "x" * random.Random(seed).randrange(0, 4096)


def shift(seed: int, stage: int) -> list[object]:
    """Allocate and return (keep it alive) a seeded random amount of memory.

    One block under glibc's mmap threshold (so it moves the main heap, by 16-byte steps across
    4 KiB pages and beyond) and a few hundred small objects of random sizes (so pymalloc's pools
    fill differently). ``stage`` gives each call its own draw from the same seed.
    """
    rng = random.Random(seed * 31 + stage)
    keep: list[object] = [bytearray(rng.randrange(16, 96 * 1024, 16))]
    keep.extend(bytes(rng.randrange(1, 512)) for _ in range(rng.randrange(0, 400)))
    return keep
