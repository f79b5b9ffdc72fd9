from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
DATA = HERE / "data"


@pytest.fixture
def scenarios_ok() -> Path:
    return HERE / "scenarios_ok"


@pytest.fixture
def scenarios_broken() -> Path:
    return HERE / "scenarios_broken"


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Every test runs in an empty folder: no ./scenarios or ./results of the checkout."""
    monkeypatch.chdir(tmp_path)
