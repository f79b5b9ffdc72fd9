"""``poolbench profile`` as a library call: the request (a script, a module or a scenario), its
checks before anything runs, the profile, and the scaffold of the best candidate."""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ._model import MAX_OPS, MIN_COUNT, SHORT, Profile, Site, Target
from ._scaffold import check_scaffold_name, scaffold


@dataclass(frozen=True)
class ProfileRequest:
    target: str
    """``SCRIPT.py``, a module (with ``module``), or a scenario name."""
    args: Sequence[str] = ()
    """The script's or module's arguments."""
    module: bool = False
    params: Sequence[str] = ()
    """Scenarios: ``-p NAME=VALUE`` assignments (one value each)."""
    pool: str = "none"
    ops: int = 5000
    scenario_dirs: Sequence[Path] = ()
    short: int = SHORT
    min_count: int = MIN_COUNT
    timeout: float = 600.0
    scaffold: str | None = None
    """Write ``scenarios/NAME.py`` for the best candidate."""

    def check(self) -> None:
        """Refuse values no profile can run with, as bad input, before the program runs."""
        if self.short < 1 or self.min_count < 1 or not 1 <= self.ops <= MAX_OPS:
            raise UsageError(
                f"--short and --min-count take whole numbers of at least 1, --ops 1 to {MAX_OPS:,}"
            )
        if self.scaffold:
            check_scaffold_name(self.scaffold)  # before the program runs, not after


@dataclass
class ProfileOutcome:
    profile: Profile
    scaffolded: tuple[Path, Site] | None = field(default=None)
    """The scaffold written, and the site it was made from."""


def profile_session(request: ProfileRequest) -> ProfileOutcome:
    """Check the request, profile its target in a child process, and write the scaffold it asks for."""
    from . import run_target

    request.check()
    found = run_target(target_of(request), timeout=request.timeout, short=request.short,
                       min_count=request.min_count)  # fmt: skip
    outcome = ProfileOutcome(found)
    if request.scaffold:
        outcome.scaffolded = write_scaffold(found, request.scaffold)
    return outcome


def target_of(request: ProfileRequest) -> Target:
    """What the child runs: a module, a script (that compiles), or a scenario with one set of
    parameters. Every mistake is a :class:`UsageError`."""
    target, args = request.target, tuple(request.args)
    if request.module:
        _check_module(target)
        return Target("module", target, args)
    if target.endswith(".py") or os.sep in target or Path(target).is_file():
        if Path(target).is_dir():
            raise UsageError(
                f"{target} is a folder, not a script", hint="name a .py file, or -m for a module"
            )
        if not Path(target).is_file():
            raise UsageError(f"no such script: {target}")
        _check_compiles(Path(target))
        return Target("script", os.path.abspath(target), args)
    return _scenario_target(request)


def _scenario_target(request: ProfileRequest) -> Target:
    from ..discovery import discover
    from ..params import split_assignments
    from ..planning import plan

    name = request.target
    if request.args:
        raise UsageError(f"unexpected arguments for scenario {name!r}: {' '.join(request.args)}")
    [(ref, cls)] = discover(request.scenario_dirs).lookup([name])
    groups = plan([(ref, cls)], [request.pool], [1], split_assignments(request.params))
    if len(groups) != 1:
        raise UsageError(
            f"profile runs one set of parameters, not {len(groups)}", hint="give -p one value each"
        )
    source = inspect.getsourcefile(cls)
    return Target("scenario", name, scenario=ref.to_json(), params=groups[0].params, pool=request.pool,
                  ops=request.ops, source=source)  # fmt: skip


def _check_module(name: str) -> None:
    """``-m NAME`` must name a module found as ``python -m`` finds it (from here). Only its
    top-level package is looked up: finding ``a.b`` would import ``a``, running the user's code in
    poolbench's own process; a missing submodule is reported by the profiled run."""
    import importlib.util
    import sys

    top = name.split(".", 1)[0]
    sys.path.insert(0, os.getcwd())
    try:
        found = importlib.util.find_spec(top) if top.isidentifier() else None
    except (ImportError, ValueError):
        found = None
    finally:
        sys.path.pop(0)
    if found is None:
        raise UsageError(
            f"no module named {top!r}", hint="-m takes a module importable from here, e.g. -m myapp.server"
        )


def _check_compiles(script: Path) -> None:
    """A script that does not compile is bad input, named by its own line, before memray starts
    (it was profiled: 1,841 allocations of the interpreter start, "raised SyntaxError")."""
    try:
        compile(script.read_bytes(), str(script), "exec")
    except SyntaxError as exc:
        raise UsageError(f"{script}: {exc.msg} (line {exc.lineno})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {script}: {exc}") from None


def write_scaffold(found: Profile, name: str) -> tuple[Path, Site]:
    """``scenarios/NAME.py`` for the best candidate of ``found``: its path and the site."""
    from ..storage import make_folder

    best = next((s for s in found.sites if s.candidate), None)
    if best is None:
        raise UsageError("no candidate to scaffold: no site is frequent, short-lived and uniform")
    path = check_scaffold_name(name)
    make_folder(path.parent)
    path.write_text(scaffold(best, name))
    return path, best
