"""Scenario parameters: `-p` values parsed (sizes, booleans, lists), checked, and planned into cells."""

from __future__ import annotations

import re

import pytest

from poolbench.errors import UsageError
from poolbench.params import format_params, parse_int, resolve, split_assignments


@pytest.mark.parametrize(
    "text, value",
    [
        ("65536", 65536),
        ("64KiB", 65536),
        ("1MiB", 1 << 20),
        ("16mib", 16 << 20),
        ("10k", 10_000),
        ("1.5KiB", 1536),
    ],
)
def test_sizes_accept_binary_and_decimal_suffixes(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["abc", "12XB", "1.3", "-4", ""])
def test_unparsable_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_int(text)


def test_assignments_split_on_commas_and_repeat():
    assert split_assignments(["size=1KiB,64KiB", "kind=dict", "size=1MiB"]) == {
        "size": ["1KiB", "64KiB", "1MiB"],
        "kind": ["dict"],
    }


@pytest.mark.parametrize("item", ["size", "=3", "size="])
def test_assignment_without_key_or_value_is_a_usage_error(item):
    with pytest.raises(UsageError, match="bad parameter"):
        split_assignments([item])


DEFAULTS = {"batch": 1, "size": 64, "kind": "dict", "fast": False, "ratio": 0.5}


def test_resolve_parses_into_the_defaults_types():
    params = resolve("s", DEFAULTS, {}, {"size": "2KiB", "fast": "yes", "ratio": "0.25", "batch": "10"})
    assert params == {"batch": 10, "size": 2048, "kind": "dict", "fast": True, "ratio": 0.25}


def test_unknown_key_names_the_known_ones():
    with pytest.raises(UsageError) as info:
        resolve("s", DEFAULTS, {}, {"colour": "red"})
    assert "has no parameter 'colour'" in info.value.message
    assert "size" in info.value.hint


@pytest.mark.parametrize("batch", ["0", "-3"])
def test_batch_below_one_is_refused(batch):
    with pytest.raises(UsageError, match="batch"):
        resolve("s", DEFAULTS, {}, {"batch": batch})


def test_values_outside_choices_are_refused_with_the_choices():
    with pytest.raises(UsageError, match=re.escape("choose one of dict|dataclass")):
        resolve("s", DEFAULTS, {"kind": ("dict", "dataclass")}, {"kind": "tuple"})


def test_bad_size_names_the_key_and_value():
    with pytest.raises(UsageError, match="size=huge"):
        resolve("s", DEFAULTS, {}, {"size": "huge"})


def test_params_format_as_sorted_key_value_pairs():
    assert format_params({"size": 1, "batch": 2}) == "batch=2;size=1"


def test_a_value_list_with_no_value_is_bad_input():
    with pytest.raises(UsageError, match="no value for 'size'"):
        split_assignments(["size=,,"])
    assert split_assignments(["size=16,,32"]) == {"size": ["16", "32"]}


@pytest.mark.parametrize(
    "grid", [{"size": ["16", "16"]}, {"size": ["1KiB", "1024"]}, {"size": ["1KiB", " 1024 "]}]
)
def test_values_naming_one_cell_twice_plan_it_once(grid):
    from poolbench.discovery import discover
    from poolbench.planning import plan

    found = discover(())
    groups = plan(found.lookup(["bytes-buffer"]), ["none", "sync"], [1, 2], grid)
    assert [(g.params["size"], g.threads) for g in groups] == [
        (parse_int(grid["size"][0]), 1),
        (parse_int(grid["size"][0]), 2),
    ]
