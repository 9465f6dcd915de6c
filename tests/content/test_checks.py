"""The save-time check says, in plain words, what is wrong with a template and
where: what precedes the problem, and the line when the template has several."""

from __future__ import annotations

import random

import pytest

from automations.content.checks import ContentError, check_template


def _problem(source: str) -> str:
    with pytest.raises(ContentError) as caught:
        check_template(source)
    return str(caught.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        # an unclosed {{
        ("Hi {{ contact.first_name ", "The template is missing a closing `}}` after `contact.first_name`."),
        ("Hi {{ contact.first_name, see you", "The template is missing a closing `}}` after `contact.first_name`."),
        (
            "Hello\n\nDear {{ contact.first_name\nSee you",
            "The template is missing a closing `}}` after `contact.first_name` on line 3.",
        ),
        ("Hi {{", "A `{{` is never closed: add `}}`."),
        # an unclosed {% and blocks never ended
        ("{% if contact.company", "The template is missing a closing `%}` after `if contact.company`."),
        ("{% if contact.company %}Hi", "The `{% if contact.company %}` block is never closed: add `{% endif %}`."),
        (
            "Hi\n{% for tag in contact.tags %}\n{{ tag }}\n",
            "The `{% for tag in contact.tags %}` block on line 2 is never closed: add `{% endfor %}`.",
        ),
        (
            "{% if contact.company %}{% for t in contact.tags %}{{ t }}{% endif %}",
            "`{% endif %}` does not fit here: close the open `{% for %}` block with `{% endfor %}` first.",
        ),
        ("Hi{% endif %}", "`{% endif %}` has no `{% if %}` to close: remove it or add the opening tag."),
        ("{% else %}", "`{% else %}` can only be used inside an `{% if %}` … `{% endif %}` block."),
        ("{% if %}x{% endif %}", "`{% if %}` needs a condition, e.g. `{% if contact.company %}`."),
        # unknown tags
        ("{% iff contact.company %}x", "Unknown tag `{% iff %}`: did you mean `{% if %}`?"),
        ("{% hello %}", "Unknown tag `{% hello %}`: use `{% if %}`, `{% for %}` or `{% set %}`."),
        # a stray or wrong closing
        ("{% if contact.company }}x{% endif %}", "The tag `{% if contact.company` must end with `%}`, not `}}`."),
        ("{{ contact.first_name %}", "The `{{ contact.first_name` must end with `}}`, not `%}`."),
        ("{{ contact.first_name } }}", "Unexpected `}` after `contact.first_name`."),
        (
            "{{ contact.first_name contact.last_name }}",
            "Unexpected `contact` after `contact.first_name`: close the tag with `}}` first.",
        ),
        ("{{ }}", "A `{{ }}` is empty: put a value in it, e.g. `{{ contact.first_name }}`."),
        ("{{ contact. }}", "A field name is missing after `contact.`, e.g. `contact.first_name`."),
        ("{{ contact.first_name | default('there' }}", "Missing `)` after `contact.first_name | default('there'`."),
        ("{{ 'Hi }}", "The quote `'` before `Hi }}` is never closed: add the closing `'`."),
        ("Hi {# note", "A comment opened with `{#` is never closed: add `#}`."),
        # unknown filters and names
        ("{{ contact.first_name | defualt('there') }}", "Unknown filter `defualt`: did you mean `default`?"),
        (
            "Hi\n{{ contact.first_name | wow }}",
            "Unknown filter `wow` on line 2: use one such as `default`, `upper` or `title`.",
        ),
        ("{{ contatc.first_name }}", "Unknown name `contatc`: did you mean `contact`?"),
        # a bare name would print as nothing in every message
        ("Hi {{ first_name }},", "Unknown name `first_name`: did you mean `contact.first_name`?"),
        (
            "{% if vip %}Dear friend{% endif %}",
            "Unknown name `vip`: a template can use `contact` (e.g. "
            "`{{ contact.first_name }}`), `campaign.name` and `step.name`.",
        ),
        (
            "{{ customer.first_name }}",
            "Unknown name `customer`: a template can use `contact` (e.g. `{{ contact.first_name }}`), "
            "`campaign.name` and `step.name`.",
        ),
    ],
)
def test_a_broken_template_is_explained_in_plain_words(source: str, message: str) -> None:
    assert _problem(source) == message


def test_a_costly_template_says_which_budget_it_exceeds() -> None:
    assert _problem("{{ 'a' * 10**9 }}") == "The template is too costly to render: it grew past 1 MB while rendering."


@pytest.mark.parametrize(
    "source",
    [
        "",
        "Hi {{ contact.first_name | default('there') }}, about {{ campaign.name }} ({{ step.name }})",
        "{% if contact.company %}At {{ contact.company }}{% else %}Hello{% endif %}",
        "{% for tag in contact.tags %}{{ loop.index }}. {{ tag }}\n{% endfor %}",
        "{% set greeting = 'Hi' %}{{ greeting }} }} {{ contact.first_name }}",
        "{% macro hi(who) %}Hi {{ who }}{% endmacro %}{{ hi(contact.first_name) }}",
        "{% for n in range(2) %}{{ n }}{% endfor %}{% with x = contact.email %}{{ x }}{% endwith %}",
    ],
)
def test_good_templates_pass(source: str) -> None:
    check_template(source)


def test_any_broken_template_gets_a_sentence_not_a_crash() -> None:
    """Whatever is typed, the check answers with a reason (an error here would be a
    failed save with no explanation)."""
    pieces = ["{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-%}", " if ", " for ", " endif ", " else ", " in "]
    pieces += ["contact", ".", "first_name", "|", "default", "(", ")", "'", '"', "[", ",", "\n", " set ", "=", "x"]
    generator = random.Random(7)
    refused = 0
    for _ in range(3000):
        source = "".join(generator.choice(pieces) for _ in range(generator.randint(1, 10)))
        try:
            check_template(source)
        except ContentError as exc:
            refused += 1
            reason = str(exc)
            assert (reason[0].isupper() or reason[0] == "`") and reason[-1] in ".?", (source, reason)
    assert refused > 1000
