"""Validation problems are gathered from every check and raised together; the
limits on stored JSON are named in plain words."""

from __future__ import annotations

import pytest

from automations.domain.errors import Problems, ValidationError
from automations.domain.limits import MAX_JSON_DEPTH, custom_fields_problem, json_problem


def test_problems_from_several_checks_are_raised_together_first_one_per_field() -> None:
    problems = Problems()
    with problems.gather():
        raise ValidationError({"name": "Give the template a name.", "steps.0.body": "Write the text of the email."})
    with problems.gather():
        raise ValidationError.single("name", "A template named 'x' already exists: choose another name.")
    problems.add("steps", "Add at least one step.")
    assert "name" in problems and problems
    with pytest.raises(ValidationError) as caught:
        problems.raise_if_any()
    assert caught.value.errors == {
        "name": "Give the template a name.",
        "steps.0.body": "Write the text of the email.",
        "steps": "Add at least one step.",
    }
    Problems().raise_if_any()  # nothing found: nothing raised


def test_json_limits_are_named_in_plain_words() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(MAX_JSON_DEPTH + 1):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    assert json_problem(deep) == "Too deep: nested more than 32 levels."
    assert json_problem({"x": "y" * 300_000}) == "Too large: 300,009 bytes as JSON, at most 256 KB."
    assert custom_fields_problem({f"f{i}": i for i in range(101)}) == "Too many custom fields: 101, at most 100."
    assert json_problem({"ok": [1, 2, 3]}) is None
