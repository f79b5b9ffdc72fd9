"""Finding scenarios: built-ins, scenario folders, and the ``poolbench.scenarios`` entry points.

Discovery is explicit: :func:`discover` is called by the CLI and by workers, never at import time.
A file that fails to import is reported by name and path in :attr:`Discovery.problems`; the others
still load. Only the folders a user names (and ``./scenarios``) and the entry points of installed
packages are ever imported.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import io
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType

from .errors import ScenarioLoadError, UsageError
from .loading import BUILTIN_PACKAGE, ScenarioRef, builtin_package, load_file
from .scenario import Scenario

ENTRY_POINT_GROUP = "poolbench.scenarios"


@dataclass(frozen=True)
class LoadProblem:
    source: str
    error: str


@dataclass
class Discovery:
    scenarios: dict[str, tuple[ScenarioRef, type[Scenario]]] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)

    def lookup(self, names: Sequence[str]) -> list[tuple[ScenarioRef, type[Scenario]]]:
        """The scenarios called ``names``, or a :class:`UsageError` naming the unknown ones."""
        unknown = [n for n in names if n not in self.scenarios]
        if unknown:
            known = ", ".join(sorted(self.scenarios)) or "none"
            hint = f"known scenarios: {known}"
            if self.problems:
                hint += "; files that failed to load: " + "; ".join(
                    f"{p.source} ({p.error})" for p in self.problems
                )
            raise UsageError(f"unknown scenario {', '.join(map(repr, unknown))}", hint=hint)
        return [self.scenarios[n] for n in dict.fromkeys(names)]

    def builtins(self) -> list[str]:
        """The built-in scenarios a run or the doctor takes when none is named."""
        return [
            name for name, (ref, cls) in self.scenarios.items() if ref.kind == "builtin" and cls.by_default
        ]


def _classes_in(module: ModuleType) -> list[type[Scenario]]:
    found = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if issubclass(obj, Scenario) and obj is not Scenario and obj.__module__ == module.__name__:
            if obj.__name__.startswith("_"):
                continue  # a private helper base class, not a scenario
            if not obj.name:
                raise ScenarioLoadError(
                    f"{obj.__qualname__} has no `name` (name private base classes _Like_this)"
                )
            _check_class(obj)
            found.append(obj)
    return found


def _check_class(cls: type[Scenario]) -> None:
    """A scenario class's declarations have the types poolbench relies on; its methods are not
    generators (a generator ``use`` returns at once, its body never run, and would be "timed"),
    and ``async def`` only where poolbench awaits (:meth:`Scenario.not_runnable`)."""
    where = cls.__qualname__
    if not isinstance(cls.name, str) or not cls.name.strip() or cls.name != cls.name.strip():
        raise ScenarioLoadError(
            f"{where}.name must be a non-empty string without surrounding spaces, not {cls.name!r}"
        )
    if not isinstance(cls.params, dict) or not all(isinstance(k, str) and k for k in cls.params):
        raise ScenarioLoadError(
            f"{where}.params must be a dict of parameter names to defaults, not {cls.params!r}"
        )
    choices = cls.choices
    if not isinstance(choices, dict) or not all(isinstance(v, (tuple, list)) for v in choices.values()):
        raise ScenarioLoadError(
            f"{where}.choices must be a dict of parameter names to tuples of allowed values"
        )
    if not isinstance(cls.description, str):
        raise ScenarioLoadError(f"{where}.description must be a string")
    for method in ("new", "use", "run", "setup", "teardown"):
        fn = getattr(cls, method, None)
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ScenarioLoadError(
                f"{where}.{method} is a generator function: calling it would not run its body"
            )
    problem = cls.not_runnable()  # async def where poolbench would call without awaiting
    if problem is not None:
        raise ScenarioLoadError(problem)


def _error_text(exc: BaseException, path: Path | None = None) -> str:
    """``TypeError: ... (line 12)``: the line in the scenario's own file where it can be found
    (a syntax error's line, or the deepest frame in that file), not a line of importlib's."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}) while being imported"
    if isinstance(exc, KeyboardInterrupt):
        return "it raised KeyboardInterrupt while being imported"
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if path is not None:
        mine = [f for f in frames if f.filename and Path(f.filename).resolve() == path.resolve()]
        frames = mine or frames
    where = f" (line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class _Capped(io.TextIOBase):
    """Where an imported file's prints go: kept to a few KiB, never to poolbench's own output
    (``doctor --format json`` must stay JSON however much a scenario prints at import)."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.kept: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.size < self.limit:
            self.kept.append(text[: self.limit - self.size])
            self.size += len(self.kept[-1])
        return len(text)


@contextmanager
def _quiet_import() -> Iterator[None]:
    sink = _Capped()
    with redirect_stdout(sink), redirect_stderr(sink):
        yield


def _import_classes(module_name: str) -> list[type[Scenario]]:
    return _classes_in(importlib.import_module(module_name))


def _file_classes(path: Path) -> list[type[Scenario]]:
    return _classes_in(load_file(path))


def _guarded(
    load: Callable[[], list[type[Scenario]]], path: Path | None = None
) -> list[type[Scenario]] | str:
    """The scenario classes ``load()`` finds, or why it failed: any exception, ``sys.exit()`` and
    ``KeyboardInterrupt`` raised at import included, so one bad file cannot end the command."""
    try:
        with _quiet_import():
            return load()
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001 - reported by name
        return _error_text(exc, path)


def _builtin_files() -> dict[str, Path]:
    package = builtin_package()
    folder = Path(next(iter(package.__path__)))
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b) or a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def discover(
    folders: Iterable[Path] = (),
    *,
    include_cwd: bool = True,
    entry_points: bool = True,
) -> Discovery:
    """Load every scenario poolbench can see; problems are collected, not raised."""
    found = Discovery()
    builtins = _builtin_files()

    def add(ref: ScenarioRef, cls: type[Scenario], source: str) -> None:
        if ref.name in found.scenarios:
            first = found.scenarios[ref.name][0]
            found.problems.append(
                LoadProblem(source, f"scenario {ref.name!r} is already defined by {first.location}")
            )
            return
        found.scenarios[ref.name] = (ref, cls)

    for stem in builtins:
        module_name = f"{BUILTIN_PACKAGE}.{stem}"
        classes = _guarded(functools.partial(_import_classes, module_name))
        if isinstance(classes, str):
            found.problems.append(LoadProblem(module_name, classes))
            continue
        for cls in classes:
            add(ScenarioRef(cls.name, "builtin", module_name, cls.__name__), cls, module_name)

    dirs = [Path("scenarios")] if include_cwd and Path("scenarios").is_dir() else []
    for folder in folders:
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise UsageError(
                f"scenario folder {str(folder)!r} {what}",
                hint="--scenarios-dir takes a folder of scenario .py files",
            )
        dirs.append(folder)
    seen: set[Path] = set()
    for folder in dirs:
        for path in sorted(folder.glob("*.py")):
            resolved = path.resolve()
            if path.name.startswith("_") or resolved in seen:
                continue
            if not path.is_file():  # a FIFO named x.py would block the import forever
                found.problems.append(
                    LoadProblem(str(path), "not a regular file (a pipe or a device?): skipped")
                )
                continue
            seen.add(resolved)
            builtin = builtins.get(path.stem)
            if builtin is not None and _same_file(builtin, path):
                continue  # poolbench's own scenarios/ folder, seen from a checkout
            classes = _guarded(functools.partial(_file_classes, path), path)
            if isinstance(classes, str):
                found.problems.append(LoadProblem(str(path), classes))
                continue
            for cls in classes:
                add(ScenarioRef(cls.name, "folder", str(resolved), cls.__name__), cls, str(path))

    if entry_points:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):

            def load(ep: metadata.EntryPoint = ep) -> list[type[Scenario]]:
                loaded = ep.load()
                classes = _classes_in(loaded) if isinstance(loaded, ModuleType) else [loaded]
                for cls in classes:
                    if not (isinstance(cls, type) and issubclass(cls, Scenario)):
                        raise ScenarioLoadError(f"{ep.value} is not a poolbench.Scenario subclass")
                return classes

            classes = _guarded(load)
            if isinstance(classes, str):
                found.problems.append(LoadProblem(f"entry point {ep.name} ({ep.value})", classes))
                continue
            for cls in classes:
                location = f"{cls.__module__}:{cls.__qualname__}"
                add(ScenarioRef(cls.name, "entry-point", location, cls.__name__), cls, ep.value)
    return found
