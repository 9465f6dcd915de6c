"""The save-time check of a template: it must parse, stay inside the sandbox and
render a sample contact within the size and time budgets.

Templates that only print variables are tried in-process (microseconds); the
others in the bounded renderer's worker, so a template bomb is refused within a
second instead of stalling the dashboard or the API that saves it.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

from automations.content.bounded import Field, shared_renderer
from automations.content.templating import (
    MAX_VALUE_CHARS,
    SAMPLE_CONTACT,
    TEMPLATE_CACHE_SIZE,
    ContentError,
    compile_template,
    contact_context,
    extra_context,
    is_plainly_bounded,
)


def check_template(source: str) -> None:
    """Raise `ContentError` with the reason when `source` cannot be used."""
    if not source:
        return
    problem = _template_problem(source)
    if problem is not None:
        raise ContentError(problem)


@lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def _template_problem(source: str) -> str | None:
    # The verdict depends on the source alone (the sample contact and the sandbox
    # are fixed), so starting the 1,000th campaign from a template does not
    # compile and trial-render its steps again.
    try:
        template = compile_template(source)
    except TemplateSyntaxError as exc:
        return f"template syntax error on line {exc.lineno}: {exc.message}"
    if not is_plainly_bounded(source):
        return _trial_in_worker(source)
    try:
        template.render(contact=contact_context(SAMPLE_CONTACT), **extra_context())
    except SecurityError as exc:
        return f"template not allowed: {exc}"
    except UndefinedError as exc:
        return f"template refers to something that does not exist: {exc}"
    except TemplateError as exc:
        return f"template error: {exc}"
    except Exception as exc:  # e.g. a division by zero in an expression
        return f"template fails to render: {type(exc).__name__}: {exc}"
    return None


def _trial_in_worker(source: str) -> str | None:
    """The trial render of a template that loops, calls or computes: in the
    bounded renderer's worker, so a template bomb is refused within a second
    instead of stalling the process that saves it."""
    [rendered] = shared_renderer().render_many(
        [([Field(source, MAX_VALUE_CHARS, "the template")], contact_context(SAMPLE_CONTACT), extra_context())]
    )
    if rendered.texts is not None:
        return None
    if rendered.kind in ("size", "time", "memory"):
        return f"template too costly to render: {rendered.problem}"
    reasons = {
        "SecurityError": "template not allowed",
        "SizeBudgetExceeded": "template too costly to render",
        "UndefinedError": "template refers to something that does not exist",
    }
    if rendered.exception in reasons:
        return f"{reasons[rendered.exception]}: {rendered.message}"
    if rendered.exception and rendered.exception.endswith("Error") and "Template" in rendered.exception:
        return f"template error: {rendered.message}"
    return f"template fails to render: {rendered.exception}: {rendered.message}"


__all__ = ["ContentError", "check_template"]
