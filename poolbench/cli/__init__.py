"""poolbench's command line: ``poolbench run|size|compare|show|list|merge|plot|doctor|profile``."""

from __future__ import annotations

from . import compare as _compare  # noqa: F401 - registers the command
from . import doctor as _doctor  # noqa: F401
from . import list as _list  # noqa: F401
from . import merge as _merge  # noqa: F401
from . import plot as _plot  # noqa: F401
from . import profile as _profile  # noqa: F401
from . import run as _run  # noqa: F401
from . import show as _show  # noqa: F401
from . import size as _size  # noqa: F401
from ._app import app
from ._streams import guard


def main() -> None:
    guard()
    app()


__all__ = ["app", "main"]
