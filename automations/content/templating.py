"""Personalisation: subjects and bodies are sandboxed Jinja2 templates.

A template is checked when it is saved: it must parse, and rendering it against a
sample contact must not reach for anything the sandbox forbids
(`{{ contact.__class__ }}`, `{{ ''.__class__.__mro__ }}` ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Compiling a template costs about a millisecond; rendering one, microseconds. A
# runner batch or a rules pass repeats the same few sources (those of the system
# and custom templates) hundreds of times, so compiled templates and validation
# verdicts are kept per source. Bounded, so that a stream of distinct one-off
# sources (campaigns from scratch) cannot grow the process without limit.
TEMPLATE_CACHE_SIZE = 2048


# The largest thing a template may build in one operation: the largest field
# budget (an email body, 1 MB). `'a' * 10**9` is refused before it allocates.
MAX_VALUE_CHARS = 1_000_000


class SizeBudgetExceeded(SecurityError):
    """A value or an output past its size budget (the message says which)."""

    def __init__(self, limit: int):
        super().__init__(f"grew past {human_size(limit)}")
        self.limit = limit


def human_size(chars: int) -> str:
    if chars >= 1_000_000 and chars % 1_000_000 == 0:
        return f"{chars // 1_000_000} MB"
    if chars >= 1000 and chars % 1000 == 0:
        return f"{chars // 1000} KB"
    return f"{chars:,} characters"


class _StrictSandbox(ImmutableSandboxedEnvironment):
    """A sandbox that fails loudly on an unsafe attribute instead of rendering it
    as an empty string, so that such a template is refused when it is saved."""

    # `**` on big numbers would hang the process (the sandbox lets it through),
    # and `*` repeats a string or a list as often as it is told.
    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and (
            not isinstance(right, (int, float))
            or abs(right) > 100
            or (isinstance(left, (int, float)) and abs(left) > 10**6)
        ):
            raise SecurityError("exponent too large")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                repeated = isinstance(sequence, (str, list, tuple)) and isinstance(times, int)
                if repeated and len(sequence) * times > MAX_VALUE_CHARS:
                    raise SizeBudgetExceeded(MAX_VALUE_CHARS)
        return super().call_binop(context, operator, left, right)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


_env = _StrictSandbox(autoescape=False, undefined=Undefined)

SAMPLE_CONTACT: dict[str, Any] = {
    "id": 1,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "full_name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+442071838750",
    "company": "Analytical Engines Ltd",
    "timezone": "Europe/London",
    "tags": ["customer"],
    "custom": {},
}


class ContentError(ValueError):
    """A template that does not parse or escapes the sandbox; the message says why."""


def contact_context(contact: Any) -> dict[str, Any]:
    """The `contact` variable templates see. Empty values are left out, so that
    `{{ contact.first_name | default("there") }}` falls back when a name is missing."""
    if isinstance(contact, dict):
        data = dict(contact)
    else:
        data = {
            "id": contact.id,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "full_name": contact.full_name,
            "email": contact.email,
            "phone": contact.phone,
            "company": contact.company,
            "timezone": contact.timezone,
            "tags": list(contact.tags),
            "custom": dict(contact.custom_fields or {}),
        }
    custom = data.get("custom") or {}
    context = {key: value for key, value in data.items() if value not in (None, "")}
    # Custom fields are reachable as contact.custom.plan and, when no standard
    # field has the name, as contact.plan.
    for key, value in custom.items():
        if value not in (None, ""):
            context.setdefault(str(key), value)
    context["custom"] = {k: v for k, v in custom.items() if v not in (None, "")}
    return context


@lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def compile_template(source: str) -> Template:
    """`source` compiled in the strict sandbox, once per distinct source (an LRU
    cache of `TEMPLATE_CACHE_SIZE` entries). Raises `TemplateSyntaxError` when it
    does not parse (not cached: such a source is refused when saved). A compiled
    template is immutable and may be rendered from several threads at once."""
    return _env.from_string(source)


# Filters whose output is no larger than their input plus their constant
# arguments: a template made only of variables passed through these cannot loop
# or grow, so it is rendered in-process (`content.bounded` sends the others to a
# worker that can be killed).
_BOUNDED_FILTERS = frozenset(
    {
        "default", "d", "upper", "lower", "title", "capitalize", "trim", "striptags", "e", "escape",
        "string", "length", "count", "first", "last", "int", "float", "round", "abs", "truncate", "join",
        "safe", "urlencode",
    }
)  # fmt: skip
_BOUNDED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Const,
    nodes.Filter, nodes.Keyword,
)  # fmt: skip


@lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def is_plainly_bounded(source: str) -> bool:
    """True when `source` only prints variables, through size-keeping filters
    with short constant arguments: its rendering costs about its length."""
    if "{" not in source:
        return True
    if "{%" in source or "{#" in source:
        return False
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError:
        return False
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _BOUNDED_NODES):
            return False
        if isinstance(node, nodes.Filter) and node.name not in _BOUNDED_FILTERS:
            return False
        if isinstance(node, nodes.Const) and isinstance(node.value, str) and len(node.value) > 1000:
            return False
        if isinstance(node, nodes.Const) and isinstance(node.value, int) and abs(node.value) > MAX_VALUE_CHARS:
            return False
    return True


def undeclared_names(source: str) -> set[str]:
    """The top-level names `source` reads that it does not set itself (a loop
    variable, `{% set %}`) and that are not the sandbox's own (`range`...): what the
    render context must give. Raises `TemplateSyntaxError` like `compile_template`."""
    return set(meta.find_undeclared_variables(_env.parse(source))) - set(_env.globals)


def extra_context(campaign_name: str = "Sample campaign", step_name: str = "Sample step") -> dict[str, Any]:
    return {"campaign": {"name": campaign_name}, "step": {"name": step_name}}


def render(source: str, contact: Any, *, campaign_name: str = "", step_name: str = "") -> str:
    """Render a saved subject or body for `contact` (a model or a mapping)."""
    if not source or "{" not in source:
        return source or ""
    return render_for_context(source, contact_context(contact), campaign_name=campaign_name, step_name=step_name)


def render_for_context(source: str, context: Mapping[str, Any], *, campaign_name: str = "", step_name: str = "") -> str:
    """`render` with the `contact` variable already built by `contact_context` (the
    runner builds it once per step, for the subject and the body)."""
    if not source or "{" not in source:
        return source or ""
    return compile_template(source).render(contact=context, **extra_context(campaign_name, step_name))


__all__ = [
    "ContentError",
    "MAX_VALUE_CHARS",
    "SizeBudgetExceeded",
    "human_size",
    "is_plainly_bounded",
    "TEMPLATE_CACHE_SIZE",
    "compile_template",
    "render",
    "render_for_context",
    "contact_context",
    "SAMPLE_CONTACT",
]
