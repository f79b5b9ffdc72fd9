"""A scenario's reference, and loading its class from it: the part of discovery both sides need.

The parent finds scenarios (:mod:`poolbench.discovery`) and names each by a :class:`ScenarioRef`;
a worker, a counting process, the doctor's and the profile's children load the class again from
that reference (:func:`load_ref`), without discovering anything.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ScenarioLoadError
from .scenario import Scenario

BUILTIN_PACKAGE = "poolbench.scenarios"


@dataclass(frozen=True)
class ScenarioRef:
    """Where a scenario class lives, in a form a worker process can load it from again."""

    name: str
    kind: str  # "builtin" | "folder" | "entry-point"
    location: str  # module name, file path, or "module:attr"
    class_name: str

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "location": self.location,
            "class_name": self.class_name,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> ScenarioRef:
        return cls(data["name"], data["kind"], data["location"], data["class_name"])


def _module_name_for(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    return f"poolbench_user_scenarios.{path.stem}_{digest}"


def load_file(path: Path) -> ModuleType:
    """Import one scenario file under a private module name (once per process)."""
    path = path.resolve()
    name = _module_name_for(path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScenarioLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def builtin_package() -> ModuleType:
    """``poolbench.scenarios``: installed from the top-level ``scenarios/`` folder.

    Imported from a source checkout that was not installed (``python -m poolbench`` in the
    repository), the package has no such subfolder; the sibling ``scenarios/`` folder is then
    registered under that name, so the built-ins load the same way.
    """
    try:
        return importlib.import_module(BUILTIN_PACKAGE)
    except ModuleNotFoundError:
        sibling = Path(__file__).resolve().parent.parent / "scenarios" / "__init__.py"
        if not sibling.exists():
            raise
        spec = importlib.util.spec_from_file_location(
            BUILTIN_PACKAGE, sibling, submodule_search_locations=[str(sibling.parent)]
        )
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[BUILTIN_PACKAGE] = module
        spec.loader.exec_module(module)
        return module


def load_ref(ref: ScenarioRef) -> type[Scenario]:
    """Load the class ``ref`` names again (in a worker process)."""
    module: Any
    if ref.kind == "folder":
        module = load_file(Path(ref.location))
    elif ref.kind == "entry-point":
        module = importlib.import_module(ref.location.partition(":")[0])
    else:
        if ref.kind == "builtin":
            builtin_package()
        module = importlib.import_module(ref.location)
    cls = getattr(module, ref.class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Scenario)):
        raise ScenarioLoadError(f"{ref.location} no longer defines {ref.class_name}")
    return cls
