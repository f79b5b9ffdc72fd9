"""Finding scenarios: built-ins, folders and entry points; a bad file named, the others loaded."""

from __future__ import annotations

import shutil

import pytest

from poolbench.discovery import discover
from poolbench.errors import UsageError
from poolbench.loading import load_ref


def test_builtins_are_found_from_any_directory():
    found = discover()
    assert set(found.builtins()) == {
        "async-buffer",
        "async-db",
        "bytes-buffer",
        "db-connections",
        "json-struct",
        "worker-tasks",
    }
    assert found.problems == []


def test_folder_scenarios_load_with_their_source(scenarios_ok):
    found = discover([scenarios_ok])
    ref, cls = found.scenarios["tiny"]
    assert ref.kind == "folder"
    assert cls.default_params() == {"batch": 1, "size": 8}
    assert load_ref(ref) is cls


def test_a_file_dropped_into_scenarios_folder_is_found(tmp_path, scenarios_ok):
    (tmp_path / "scenarios").mkdir()
    shutil.copy(scenarios_ok / "tiny.py", tmp_path / "scenarios" / "mine.py")
    assert "tiny" in discover().scenarios


def test_a_broken_file_is_reported_by_path_and_the_others_still_load(scenarios_broken):
    found = discover([scenarios_broken])
    assert "fine" in found.scenarios
    assert len(found.problems) == 1
    assert found.problems[0].source.endswith("broken.py")
    assert "broken on purpose" in found.problems[0].error


def test_unknown_scenario_lists_the_known_ones_and_broken_files(scenarios_broken):
    found = discover([scenarios_broken])
    with pytest.raises(UsageError) as info:
        found.lookup(["nope"])
    assert "unknown scenario 'nope'" in info.value.message
    assert "fine" in info.value.hint
    assert "broken.py" in info.value.hint


def test_missing_scenarios_dir_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        discover([tmp_path / "missing"])


def test_a_name_defined_twice_is_reported(tmp_path, scenarios_ok):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(scenarios_ok / "tiny.py", other / "tiny_copy.py")
    found = discover([scenarios_ok, other])
    assert any("already defined" in p.error for p in found.problems)


GOOD = """
from poolbench import Scenario

class Good(Scenario):
    name = "good"

    def new(self):
        return []

    def use(self, obj):
        pass
"""


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('    name = "bad"\n    params = ["size"]\n', "params must be a dict"),
        ("    name = 42\n", "name must be a non-empty string"),
        ('    name = "bad"\n    choices = {"kind": "dict"}\n', "choices must be a dict"),
        ('    name = "bad"\n    def use(self, obj):\n        yield obj\n', "use is a generator function"),
        (
            '    name = "bad"\n    async def use(self, obj):\n        pass\n'
            "    def run(self, n, get, put):\n        pass\n",
            "use() is async def but its run() is not",
        ),
        (
            '    name = "bad"\n    def use(self, obj):\n        pass\n    async def setup(self):\n        pass\n',
            "setup() is async def but use() is not",
        ),
        (
            '    name = "bad"\n    async def use(self, obj):\n        pass\n    async def reset(self, obj):\n'
            "        pass\n",
            "reset() cannot be async def",
        ),
    ],
)
def test_a_malformed_scenario_class_is_named_by_its_file_and_the_others_load(tmp_path, body, said):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(
        "from poolbench import Scenario\n\nclass Bad(Scenario):\n"
        + body
        + "    def new(self):\n        return []\n"
    )
    found = discover([tmp_path], include_cwd=False, entry_points=False)
    assert "good" in found.scenarios and "bad" not in found.scenarios
    [problem] = found.problems
    assert problem.source.endswith("bad.py") and said in problem.error


def test_a_pipe_named_like_a_scenario_file_is_skipped_not_opened(tmp_path):
    import os

    (tmp_path / "good.py").write_text(GOOD)
    os.mkfifo(tmp_path / "x.py")  # opening it would block until a writer came
    found = discover([tmp_path], include_cwd=False, entry_points=False)
    assert "good" in found.scenarios
    [problem] = found.problems
    assert problem.source.endswith("x.py") and "not a regular file" in problem.error
