"""The exceptions poolbench raises.

Every error a user can cause derives from :class:`PoolbenchError`; the CLI catches that one class
in one place and turns it into a red line, an optional hint and exit code 2::

    PoolbenchError                 anything a user can cause; carries an optional ``hint``
    ├── UsageError                 a bad option, parameter or scenario name
    ├── ScenarioLoadError          a scenario file or entry point that does not import
    ├── ResultFileError            a result file that is missing, corrupt, foreign or too new
    │   └── ResultExistsError      refusing to overwrite a result file without ``--force``
    ├── Interrupted                Ctrl-C or SIGTERM during a run (exit 130; cells so far saved)
    ├── ProfileFailed              ``profile`` recorded nothing usable (exit 1)
    └── PoolError                  raised by the pools in :mod:`poolbench.pools`
        ├── PoolTimeout            no object became free within the timeout (bounded pool)
        ├── PoolClosed             the pool was closed
        └── PoolMisuse             a double put detected by a pool that must keep its bound

    Stopped (a KeyboardInterrupt)  SIGTERM or SIGHUP: the CLI raises it; everything that handles
                                   Ctrl-C handles it, and what must end quickly can tell it apart

A failing *cell* (a scenario that raises or hangs inside a worker) is not an exception here: it is
recorded in the result with its error text, so the rest of the matrix still runs.
"""

from __future__ import annotations


class PoolbenchError(Exception):
    """Base of every error a user can cause; ``hint`` says what to do about it."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(PoolbenchError):
    """A bad option, parameter value or scenario name."""


class ScenarioLoadError(PoolbenchError):
    """A scenario file or entry point failed to import."""


class ResultFileError(PoolbenchError):
    """A result file is missing, unreadable, corrupt, foreign or from a newer poolbench."""


class ResultExistsError(ResultFileError):
    """The output file exists and ``--force`` was not given."""


class Interrupted(PoolbenchError):
    """The run was interrupted; what was measured is saved in a file marked incomplete."""

    exit_code = 130


class ProfileFailed(PoolbenchError):
    """``poolbench profile`` recorded nothing usable (the program died before the first record)."""

    exit_code = 1


class Stopped(KeyboardInterrupt):
    """A stop signal (``kill``, a cancelled CI job, a closed terminal): Ctrl-C's path, but
    nothing more is worth waiting for (``profile`` skips reading what the program recorded)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class PoolError(PoolbenchError):
    """Base of the errors raised by the pools."""


class PoolTimeout(PoolError):
    """``BoundedPool.get(timeout=...)``: every object stayed out for the whole timeout."""


class PoolClosed(PoolError):
    """``get`` or ``put`` on a pool after ``close()``."""


class PoolMisuse(PoolError):
    """An object was returned more times than it was taken (bounded pool only)."""
