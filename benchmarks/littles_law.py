"""A known answer for pools that make callers wait: Little's law.

An operation that holds its object for a fixed time T (``await asyncio.sleep(T)``) under
``--pool bounded`` with ``max_size`` S, at concurrency C, can run at most min(S, C) at a time, so
it runs at min(S, C) / T operations per second; unpooled, every task has its own object, C / T.
This runs ``poolbench run`` on such a scenario and prints measured against expected, and the
pool waits (there must be some exactly when C > S).

    python benchmarks/littles_law.py [--hold-ms 2] [--size 4] [--concurrency 1,4,16,64]

Exit status 1 when a ``bounded`` cell is more than 15% off min(S, C) / T, or its waits are not
there exactly when C > S. The ``none`` cells are printed for reference: at high concurrency they
fall short of C / T by the loop's own work per operation (a timer, a handle, a task step: at 64
tasks of 2 ms, 32,000 wake-ups a second on one core), which Little's law does not count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SCENARIO = '''
import asyncio
from poolbench import Scenario


class Hold(Scenario):
    """Hold the object for `hold_ms` milliseconds: what a connection does during a query."""

    name = "hold"
    params = {"hold_ms": 2.0, "pool_size": 4}

    def new(self):
        return bytearray(64)

    async def use(self, buf):
        await asyncio.sleep(self.params["hold_ms"] / 1000)

    def pool_options(self, strategy, threads):
        if strategy == "bounded":
            return {"max_size": int(self.params["pool_size"]), "timeout": None}
        return super().pool_options(strategy, threads)
'''

TOLERANCE = 0.15


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-ms", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--concurrency", default="1,4,16,64")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poolbench-littles-law-") as tmp:
        folder = Path(tmp) / "scenarios"
        folder.mkdir()
        (folder / "hold.py").write_text(SCENARIO)
        out = Path(tmp) / "hold.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "poolbench",
                "run",
                "hold",
                "--scenarios-dir",
                str(folder),
                "-P",
                "none,bounded",
                "-c",
                args.concurrency,
                "-p",
                f"hold_ms={args.hold_ms}",
                "-p",
                f"pool_size={args.size}",
                "--quick",
                "-o",
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        data = json.loads(out.read_text())
    hold = args.hold_ms / 1000
    worst = 0.0
    print(f"hold {args.hold_ms:g} ms, bounded max_size {args.size}")
    print(f"{'pool':8} {'tasks':>5} {'expected ops/s':>15} {'measured':>10} {'off':>7} {'waits':>7}")
    for cell in sorted(data["cells"], key=lambda c: (c["pool"], c["concurrency"])):
        values = sorted(v for run in cell["runs"] for v in run["values"])
        measured = 1e9 / values[len(values) // 2]
        c = cell["concurrency"]
        limit = min(args.size, c) if cell["pool"] == "bounded" else c
        expected = limit / hold
        off = measured / expected - 1
        waits = (cell.get("pool_stats") or {}).get("waits", "-")
        if cell["pool"] == "bounded":
            worst = max(worst, abs(off))
            if (waits > 0) != (c > args.size):
                worst = float("inf")
        print(f"{cell['pool']:8} {c:>5} {expected:>15,.0f} {measured:>10,.0f} {off:>+7.1%} {waits!s:>7}")
    print(
        f"bounded, worst: {worst:.1%} off (tolerance {TOLERANCE:.0%}); waits exactly when tasks > {args.size}"
    )
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
