"""poolbench: does pooling this object pay off here, and by how much?

The package's import is kept light (no typer, rich, scipy or matplotlib): worker processes import
it to measure, and must not pay for the parent's rendering.
"""

from __future__ import annotations

from .scenario import Scenario, SkipScenario

__version__ = "0.1.0"

__all__ = ["Scenario", "SkipScenario", "__version__"]
