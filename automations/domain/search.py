"""Search conditions over the domain model, shared by every list that finds contacts by text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_

from automations.domain.db import folding_for
from automations.domain.models import Contact


def like_pattern(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, lower-cased, with `%`, `_` and `\\` taken literally."""
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contact_matches(text: str, *, company: bool = True) -> Any:
    """Condition: a contact's name (first, last, or "first last"), email, company or phone holds `text`."""
    pattern = like_pattern(text)
    lower = folding_for(pattern)
    full_name = lower(Contact.first_name + " " + func.coalesce(Contact.last_name, ""))
    conditions = [
        full_name.like(pattern, escape="\\"),
        lower(Contact.email).like(pattern, escape="\\"),
        Contact.phone.like(pattern, escape="\\"),
    ]
    if company:
        conditions.append(lower(Contact.company).like(pattern, escape="\\"))
    return or_(*conditions)
