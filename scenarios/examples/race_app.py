"""A small application with a bug only the race mode shows: it assumes put() then get() returns
the same object. Run it under checking, no code change needed:

    POOLBENCH_CHECK=1 POOLBENCH_CHECK_RACE=0.25 python scenarios/examples/race_app.py
"""

from __future__ import annotations

from poolbench.pools import SyncPool


def main() -> int:
    pool = SyncPool(dict, sharded=False)
    session = pool.get()
    session["user"] = "ada"
    pool.put(session)
    wrong = 0
    for _ in range(100):
        again = pool.get()
        if again is not session:  # the bug: relying on getting the same object back
            wrong += 1
        pool.put(again)
        session = again
    leaked = pool.get()  # taken, never returned
    leaked["user"] = "grace"
    print(f"got a different object back {wrong} times out of 100")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
