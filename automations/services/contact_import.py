"""Import contacts from a CSV file: a preview with every row's problems, then the
valid rows are created and each invalid row is reported (none is dropped silently).

Columns: first_name (required), last_name, email, phone, company, timezone, tags
(separated by `,` or `;`), email_opt_out, sms_opt_out. Any other column becomes a
custom field of that name.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.domain.db import folded
from automations.domain.errors import ValidationError
from automations.domain.models import Contact
from automations.services.contacts import create_contact
from automations.services.schemas import ContactInput, parse

STANDARD_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "timezone",
    "tags",
    "email_opt_out",
    "sms_opt_out",
)
MAX_IMPORT_ROWS = 20_000
_TRUE = {"1", "true", "yes", "y", "x"}
_FALSE = {"", "0", "false", "no", "n"}


@dataclass
class ImportRow:
    line: int  # line number in the file (the header is line 1)
    data: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class ImportResult:
    created: int
    rejected: list[ImportRow]


def _flag(value: str, name: str, errors: dict[str, str]) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text not in _FALSE:
        errors[name] = f"write yes or no (got {value!r})"
    return False


def _row_input(raw: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    custom: dict[str, str] = {}
    for key, value in raw.items():
        name = (key or "").strip().lower()
        value = (value or "").strip() if isinstance(value, str) else ""
        if not name:
            if value:
                errors["row"] = "has more cells than the header has columns"
            continue
        if name in ("email_opt_out", "sms_opt_out"):
            data[name] = _flag(value, name, errors)
        elif name == "tags":
            data[name] = [t for t in value.replace(";", ",").split(",") if t.strip()]
        elif name in STANDARD_COLUMNS:
            data[name] = value
        elif value:
            custom[name] = value
    if custom:
        data["custom_fields"] = custom
    return data


def read_csv(text: str) -> list[ImportRow]:
    """Every data row of `text` with its problems (validation, duplicate emails in the
    file). Raises `ValidationError` on `file` when the file itself is unusable."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    if "first_name" not in header:
        raise ValidationError.single("file", "the first line must be a header with at least a first_name column")
    rows: list[ImportRow] = []
    seen_emails: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if len(rows) >= MAX_IMPORT_ROWS:
            raise ValidationError.single("file", f"at most {MAX_IMPORT_ROWS} rows per import")
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
            continue
        errors: dict[str, str] = {}
        data = _row_input(raw, errors)
        try:
            parsed = parse(ContactInput, data)
            data = parsed.model_dump()
        except ValidationError as exc:
            errors.update(exc.errors)
        email = (data.get("email") or "").lower()
        if email and "email" not in errors:
            if email in seen_emails:
                errors["email"] = f"same email as line {seen_emails[email]}"
            else:
                seen_emails[email] = line
        rows.append(ImportRow(line=line, data=data, errors=errors))
    return rows


def preview_import(session: Session, text: str) -> list[ImportRow]:
    """`read_csv` plus the emails that already belong to a contact."""
    rows = read_csv(text)
    emails = [r.data["email"].lower() for r in rows if r.ok and r.data.get("email")]
    taken: set[str] = set()
    for start in range(0, len(emails), 500):  # bounded IN lists
        chunk = emails[start : start + 500]
        taken.update(session.scalars(select(folded(Contact.email)).where(folded(Contact.email).in_(chunk))))
    for row in rows:
        if row.ok and (row.data.get("email") or "").lower() in taken:
            row.errors["email"] = "a contact with this email already exists"
    return rows


def import_contacts(session: Session, text: str, *, now: datetime | None = None) -> ImportResult:
    """Create a contact for every valid row; return how many and the rejected rows."""
    rows = preview_import(session, text)
    created = 0
    for row in rows:
        if not row.ok:
            continue
        try:
            with session.begin_nested():  # a row that fails leaves the others in place
                create_contact(session, row.data, now=now)
            created += 1
        except ValidationError as exc:
            row.errors.update(exc.errors)
    return ImportResult(created=created, rejected=[r for r in rows if not r.ok])
