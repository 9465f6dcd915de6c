"""Personalisation: subjects and bodies are sandboxed Jinja2 templates.

A template is checked when it is saved: it must parse, and rendering it against a
sample contact must not reach for anything the sandbox forbids
(`{{ contact.__class__ }}`, `{{ ''.__class__.__mro__ }}` ...).
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment



class _StrictSandbox(ImmutableSandboxedEnvironment):
    """A sandbox that fails loudly on an unsafe attribute instead of rendering it
    as an empty string, so that such a template is refused when it is saved."""

    # `**` on big numbers would hang the process (the sandbox lets it through).
    intercepted_binops = frozenset({"**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if not isinstance(right, (int, float)) or abs(right) > 100 or (
                isinstance(left, (int, float)) and abs(left) > 10**6
            ):
                raise SecurityError("exponent too large")
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


def check_template(source: str) -> None:
    """Raise `ContentError` with the reason when `source` cannot be used."""
    if not source:
        return
    try:
        template = _env.from_string(source)
    except TemplateSyntaxError as exc:
        raise ContentError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    try:
        template.render(contact=contact_context(SAMPLE_CONTACT), **_extra_context())
    except SecurityError as exc:
        raise ContentError(f"template not allowed: {exc}") from exc
    except UndefinedError as exc:
        raise ContentError(f"template refers to something that does not exist: {exc}") from exc
    except TemplateError as exc:
        raise ContentError(f"template error: {exc}") from exc
    except Exception as exc:  # e.g. a division by zero in an expression
        raise ContentError(f"template fails to render: {type(exc).__name__}: {exc}") from exc


def _extra_context(campaign_name: str = "Sample campaign", step_name: str = "Sample step") -> dict[str, Any]:
    return {"campaign": {"name": campaign_name}, "step": {"name": step_name}}


def render(source: str, contact: Any, *, campaign_name: str = "", step_name: str = "") -> str:
    """Render a saved subject or body for `contact` (a model or a mapping)."""
    if not source:
        return ""
    if "{" not in source:
        return source
    template = _env.from_string(source)
    return template.render(
        contact=contact_context(contact), **_extra_context(campaign_name, step_name)
    )


__all__ = ["ContentError", "check_template", "render", "contact_context", "SAMPLE_CONTACT"]
