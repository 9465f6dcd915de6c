"""Personalisation templates: compiled once per source, checked once per source,
with the same verdicts and output as compiling every time."""

from __future__ import annotations

import pytest

from automations.content import checks, templating
from automations.content.checks import ContentError, check_template
from automations.content.templating import compile_template, render


def test_a_source_is_compiled_once_and_renders_for_each_contact() -> None:
    source = "Hi {{ contact.first_name | default('there') }}, {{ campaign.name }} #cache-test"
    assert compile_template(source) is compile_template(source)
    assert render(source, {"first_name": "Ada"}, campaign_name="Welcome") == "Hi Ada, Welcome #cache-test"
    assert render(source, {"first_name": ""}, campaign_name="Welcome") == "Hi there, Welcome #cache-test"
    assert render("no braces", {"first_name": "Ada"}) == "no braces"
    assert render("", {"first_name": "Ada"}) == ""


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{{ contact.__class__ }} #cache-test", "The template uses `__class__`, which is not allowed."),
        ("{{ contact.first_name #cache-test", "The template is missing a closing `}}` after `contact.first_name`."),
        ("{{ 2 ** 100000 }} #cache-test", "The template computes a power that is too large."),
        ("{{ 1 / 0 }} #cache-test", "The template divides by zero."),
    ],
)
def test_a_refused_template_stays_refused_with_its_reason(source: str, words: str) -> None:
    for _ in range(2):  # the second verdict comes from the cache
        with pytest.raises(ContentError) as caught:
            check_template(source)
        assert str(caught.value) == words


def test_the_caches_are_bounded() -> None:
    assert compile_template.cache_info().maxsize == templating.TEMPLATE_CACHE_SIZE
    assert checks._template_problem.cache_info().maxsize == templating.TEMPLATE_CACHE_SIZE
