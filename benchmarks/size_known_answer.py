"""A known answer for ``poolbench size``: an operation that holds its object for a fixed time.

At concurrency C (threads, or tasks on one loop), from a pool of size S, an operation that holds
its object for T runs min(S, C) at a time: min(S, C) / T operations a second (Little's law), and
the smallest size that serves the load is C. This runs ``poolbench size`` on the ``hold`` and
``async-hold`` examples and prints, per size, the throughput measured against min(S, C) / T, and
the objects in use by Little's law (arrival rate x mean time held, both measured) against
min(S, C).

    python benchmarks/size_known_answer.py [--hold-ms 2] [--threads 16] [--tasks 64] [--quick]
                                           [--loop asyncio|uvloop] [--only threads|tasks]

On asyncio's own loop a 2 ms sleep among 64 tasks lasts 2.3-2.6 ms (its timers wake on whole
milliseconds, and each wake-up serves the other tasks first): the held column shows it, and the
objects in use by Little's law stay within a few percent of min(S, C) where the nominal figure
misses by up to 20%. uvloop's timers hold 2.15-2.26 ms.

Exit status 1 when a size's throughput is more than 15% off min(S, C) / T, or the recommendation
is neither C nor the next size up in the sweep.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "scenarios" / "examples"
TOLERANCE = 0.15


def sweep(
    scenario: str, members: list[str], sizes: list[int], hold_ms: float, quick: bool, out: Path, loop: str
) -> dict:
    cmd = [sys.executable, "-m", "poolbench", "size", scenario, "--scenarios-dir", str(EXAMPLES), *members,
           "--sizes", ",".join(map(str, sizes)), "-p", f"hold_ms={hold_ms}", "--format", "json", "-o", str(out),
           "--force", *(["--quick"] if quick else []), *(["--loop", loop] if scenario.startswith("async") else [])]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout)["pools"][0]  # type: ignore[no-any-return]


def check(label: str, found: dict, concurrency: int, sizes: list[int], hold_ms: float) -> bool:
    print(f"\n{label}: hold {hold_ms:g} ms, pool bounded")
    print("| size | ops/s | min(S,C)/T | off | in use (Little) | min(S,C) | held (mean) |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    ok = True
    for row in found["sizes"]:
        expected = min(row["size"], concurrency) / (hold_ms / 1000)
        off = row["ops_per_sec"] / expected - 1
        ok &= abs(off) <= TOLERANCE
        print(f"| {row['size']} | {row['ops_per_sec']:,.0f} | {expected:,.0f} | {off:+.1%} "
              f"| {row['in_use_littles_law']:.1f} | {min(row['size'], concurrency)} | {row['hold_ns'] / 1e6:.2f} ms |")  # fmt: skip
    later = [s for s in sizes if s >= concurrency][:2]
    right = found["recommended"] in later
    ok &= right
    print(f"recommended: {found['recommended']} ({found['reason']}); expected {' or '.join(map(str, later))}"
          f": {'ok' if right else 'WRONG'}")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-ms", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--only", choices=("threads", "tasks"))
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "tasks":
            sizes = [1, 2, 4, 8, 16, 32]
            members = ["-t", str(args.threads)]
            found = sweep("hold", members, sizes, args.hold_ms, args.quick, Path(tmp) / "t.json", args.loop)
            ok &= check(f"{args.threads} threads", found, args.threads, sizes, args.hold_ms)
        if args.only != "threads":
            sizes = [1, 2, 4, 8, 16, 32, 64, 128]
            members = ["-c", str(args.tasks)]
            found = sweep(
                "async-hold", members, sizes, args.hold_ms, args.quick, Path(tmp) / "a.json", args.loop
            )
            ok &= check(f"{args.tasks} tasks on {args.loop}", found, args.tasks, sizes, args.hold_ms)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
