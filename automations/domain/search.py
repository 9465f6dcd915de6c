"""Search conditions over the domain model, shared by every list that finds contacts by text."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import false, func, or_

from automations.domain.db import folded, folding_for
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


def email_in(emails: Collection[str]) -> Any:
    """Condition: a contact's email is one of `emails` (lower-cased), ignoring
    case. ASCII emails (nearly all) are found through the lower(email) index;
    others need `folded`, which reads every row on SQLite."""
    ascii_ = [e for e in emails if e.isascii()]
    other = [e for e in emails if not e.isascii()]
    conditions = []
    if ascii_:
        conditions.append(func.lower(Contact.email).in_(ascii_))
    if other:
        conditions.append(folded(Contact.email).in_(other))
    return or_(*conditions) if conditions else false()
