"""CSV exports: `contacts`, `campaigns`, `steps`, `calendar`, `follow-ups`, `stats`,
`engagement` (one row per engagement event: an open, a click, a reply, ...).

Every file is UTF-8 with a header row and the columns listed in `COLUMNS` (a
stable contract: new columns are only ever added at the end). Times are ISO 8601
in UTC with their offset (`2026-03-02T09:00:00+00:00`); the calendar also has
the event's local time in the display timezone. Empty values are empty cells,
booleans `true`/`false`, JSON fields JSON text.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets
a leading apostrophe, so spreadsheets show it instead of running it as a formula.

Rows are streamed from the database in chunks (a server-side cursor on
PostgreSQL), so exporting a million steps holds only a chunk in memory. The
dashboard's download buttons and `python -m automations export` both call
`write_csv`/`csv_bytes` here, so they produce the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import IO, Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session

from automations.domain.config import get_settings
from automations.domain.errors import ValidationError
from automations.domain.models import (
    FINISHED_STEP_STATUSES,
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    Contact,
    ContactTag,
    EngagementEvent,
    ScheduledFollowUp,
)
from automations.domain.timeutil import as_utc, utcnow
from automations.reports.calendar import (
    CalendarFilter,
    as_list,
    event_time,
    filter_conditions,
    in_range,
)
from automations.reports.stats import StatsFilter, automation_stats, stats_rows

EXPORT_KINDS = ("contacts", "campaigns", "steps", "calendar", "follow-ups", "stats", "engagement")

COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": (
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "timezone",
        "tags",
        "email_opt_out",
        "sms_opt_out",
        "custom_fields",
        "created_at",
        "updated_at",
    ),
    "campaigns": (
        "id",
        "name",
        "status",
        "contact_id",
        "contact_name",
        "contact_email",
        "template_id",
        "template_name",
        "start_at",
        "created_at",
        "paused_at",
        "completed_at",
        "canceled_at",
        "steps_total",
        "steps_finished",
        "progress_percent",
    ),
    "steps": (
        "id",
        "campaign_id",
        "campaign_name",
        "contact_id",
        "contact_name",
        "position",
        "name",
        "message_type",
        "status",
        "attempts",
        "scheduled_at",
        "executed_at",
        "last_error",
    ),
    "calendar": (
        "id",
        "start",
        "start_local",
        "message_type",
        "status",
        "title",
        "campaign_id",
        "campaign_name",
        "contact_id",
        "contact_name",
    ),
    "follow-ups": (
        "id",
        "contact_id",
        "contact_name",
        "campaign_id",
        "campaign_name",
        "step_id",
        "title",
        "notes",
        "status",
        "due_at",
        "completed_at",
        "created_at",
    ),
    "stats": ("section", "key", "value"),
    "engagement": (
        "occurred_at",
        "kind",
        "contact",
        "email",
        "campaign",
        "template",
        "step",
        "url",
        "machine",
        "contact_id",
        "campaign_id",
        "step_id",
        "detail",
    ),
}

CHUNK_ROWS = 5_000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportFilter:
    """What an export holds; empty fields mean "all".

    `start`/`end` select by time, end excluded: contacts and campaigns by creation
    and start time, steps and the calendar by the step's time (its execution, or
    its planned time while it has not run), follow-ups by due time, stats as on
    the statistics page, engagement events by when they happened.
    """

    start: datetime | None = None
    end: datetime | None = None
    status: str | Sequence[str] | None = None  # one value or several
    message_type: str | Sequence[str] | None = None
    campaign_id: int | None = None
    template_id: int | None = None
    contact_id: int | None = None


# --- cells ------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """`text`, with a leading apostrophe when a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def cell(value: Any) -> str:
    """One value as CSV text (see the module's docstring for the formats)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, (dict, list)):
        return neutralise(json.dumps(value, sort_keys=True, ensure_ascii=False))
    return neutralise(str(value))


# --- row sources --------------------------------------------------------------------


def _range(f: ExportFilter) -> tuple[datetime, datetime] | None:
    if f.start is None and f.end is None:
        return None
    return StatsFilter(start=f.start, end=f.end).range()


def _stream(session: Session, query: Any) -> Iterator[Any]:
    # yield_per streams (server-side cursor on PostgreSQL) instead of fetching all.
    result = session.execute(query.execution_options(yield_per=CHUNK_ROWS))
    for partition in result.partitions():
        yield from partition


def _tags_column(session: Session) -> Any:
    """The contact's tags, sorted and joined with ";", aggregated in the database."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        return (
            select(func.string_agg(ContactTag.tag, aggregate_order_by(literal(";"), ContactTag.tag)))
            .where(ContactTag.contact_id == Contact.id)
            .scalar_subquery()
        )
    # SQLite reads the rows through the (contact_id, tag) primary key, so in tag order.
    return select(func.group_concat(ContactTag.tag, ";")).where(ContactTag.contact_id == Contact.id).scalar_subquery()


def _contacts(session: Session, f: ExportFilter, tz: tzinfo) -> Iterator[Iterable[Any]]:
    conditions = []
    if window := _range(f):
        conditions += [Contact.created_at >= window[0], Contact.created_at < window[1]]
    if f.contact_id:
        conditions.append(Contact.id == f.contact_id)
    query = (
        select(
            Contact.id,
            Contact.first_name,
            Contact.last_name,
            Contact.email,
            Contact.phone,
            Contact.company,
            Contact.timezone,
            _tags_column(session),
            Contact.email_opt_out,
            Contact.sms_opt_out,
            Contact.custom_fields,
            Contact.created_at,
            Contact.updated_at,
        )
        .where(*conditions)
        .order_by(Contact.id)
    )
    for row in _stream(session, query):
        values = list(row)
        values[7] = values[7] or ""
        values[10] = values[10] or {}
        yield values


def _campaigns(session: Session, f: ExportFilter, tz: tzinfo) -> Iterator[Iterable[Any]]:
    finished = func.sum(case((AutomationStep.status.in_([s.value for s in FINISHED_STEP_STATUSES]), 1), else_=0))
    progress = (
        select(AutomationStep.campaign_id.label("campaign_id"), func.count().label("total"), finished.label("finished"))
        .group_by(AutomationStep.campaign_id)
        .subquery()
    )
    conditions = []
    if window := _range(f):
        conditions += [AutomationCampaign.start_at >= window[0], AutomationCampaign.start_at < window[1]]
    if statuses := as_list(f.status):
        conditions.append(AutomationCampaign.status.in_(statuses))
    if f.campaign_id:
        conditions.append(AutomationCampaign.id == f.campaign_id)
    if f.template_id:
        conditions.append(AutomationCampaign.template_id == f.template_id)
    if f.contact_id:
        conditions.append(AutomationCampaign.contact_id == f.contact_id)
    if types := as_list(f.message_type):
        conditions.append(
            exists().where(
                and_(AutomationStep.campaign_id == AutomationCampaign.id, AutomationStep.message_type.in_(types))
            )
        )
    query = (
        select(
            AutomationCampaign.id,
            AutomationCampaign.name,
            AutomationCampaign.status,
            AutomationCampaign.contact_id,
            Contact.first_name,
            Contact.last_name,
            Contact.email,
            AutomationCampaign.template_id,
            AutomationTemplate.name,
            AutomationCampaign.start_at,
            AutomationCampaign.created_at,
            AutomationCampaign.paused_at,
            AutomationCampaign.completed_at,
            AutomationCampaign.canceled_at,
            progress.c.total,
            progress.c.finished,
        )
        .join(Contact, Contact.id == AutomationCampaign.contact_id)
        .outerjoin(AutomationTemplate, AutomationTemplate.id == AutomationCampaign.template_id)
        .outerjoin(progress, progress.c.campaign_id == AutomationCampaign.id)
        .where(*conditions)
        .order_by(AutomationCampaign.id)
    )
    for (
        cid,
        name,
        status,
        contact_id,
        first,
        last,
        email,
        template_id,
        template_name,
        start_at,
        created_at,
        paused_at,
        completed_at,
        canceled_at,
        total,
        done,
    ) in _stream(session, query):
        total, done = int(total or 0), int(done or 0)
        yield (
            cid,
            name,
            status,
            contact_id,
            f"{first} {last}".strip(),
            email,
            template_id,
            template_name,
            start_at,
            created_at,
            paused_at,
            completed_at,
            canceled_at,
            total,
            done,
            round(100.0 * done / total, 1) if total else 0.0,
        )


def _step_conditions(f: ExportFilter) -> list[Any]:
    conditions = filter_conditions(
        CalendarFilter(
            campaign_id=f.campaign_id,
            template_id=f.template_id,
            contact_id=f.contact_id,
            message_type=f.message_type,
            status=f.status,
        )
    )
    if window := _range(f):
        conditions.append(in_range(*window))
    return conditions


def _steps(session: Session, f: ExportFilter, tz: tzinfo) -> Iterator[Iterable[Any]]:
    query = (
        select(
            AutomationStep.id,
            AutomationStep.campaign_id,
            AutomationCampaign.name,
            AutomationCampaign.contact_id,
            Contact.first_name,
            Contact.last_name,
            AutomationStep.position,
            AutomationStep.name,
            AutomationStep.message_type,
            AutomationStep.status,
            AutomationStep.attempts,
            AutomationStep.scheduled_at,
            AutomationStep.executed_at,
            AutomationStep.last_error,
        )
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .join(Contact, Contact.id == AutomationCampaign.contact_id)
        .where(*_step_conditions(f))
        .order_by(AutomationStep.id)
    )
    for sid, cid, cname, contact_id, first, last, *rest in _stream(session, query):
        yield (sid, cid, cname, contact_id, f"{first} {last}".strip(), *rest)


def _calendar(session: Session, f: ExportFilter, tz: tzinfo) -> Iterator[Iterable[Any]]:
    query = (
        select(
            AutomationStep.id,
            event_time(),
            AutomationStep.message_type,
            AutomationStep.status,
            AutomationStep.name,
            AutomationStep.campaign_id,
            AutomationCampaign.name,
            AutomationCampaign.contact_id,
            Contact.first_name,
            Contact.last_name,
        )
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .join(Contact, Contact.id == AutomationCampaign.contact_id)
        .where(*_step_conditions(f))
        .order_by(event_time(), AutomationStep.id)
    )
    for sid, start, kind, status, title, cid, cname, contact_id, first, last in _stream(session, query):
        start = as_utc(datetime.fromisoformat(start) if isinstance(start, str) else start)
        yield (
            sid,
            start,
            start.astimezone(tz).isoformat(),
            kind,
            status,
            title,
            cid,
            cname,
            contact_id,
            f"{first} {last}".strip(),
        )


def _followups(session: Session, f: ExportFilter, tz: tzinfo) -> Iterator[Iterable[Any]]:
    conditions = []
    if window := _range(f):
        conditions += [ScheduledFollowUp.due_at >= window[0], ScheduledFollowUp.due_at < window[1]]
    if statuses := as_list(f.status):
        conditions.append(ScheduledFollowUp.status.in_(statuses))
    if f.contact_id:
        conditions.append(ScheduledFollowUp.contact_id == f.contact_id)
    if f.campaign_id:
        conditions.append(ScheduledFollowUp.campaign_id == f.campaign_id)
    if f.template_id:
        conditions.append(AutomationCampaign.template_id == f.template_id)
    query = (
        select(
            ScheduledFollowUp.id,
            ScheduledFollowUp.contact_id,
            Contact.first_name,
            Contact.last_name,
            ScheduledFollowUp.campaign_id,
            AutomationCampaign.name,
            ScheduledFollowUp.step_id,
            ScheduledFollowUp.title,
            ScheduledFollowUp.notes,
            ScheduledFollowUp.status,
            ScheduledFollowUp.due_at,
            ScheduledFollowUp.completed_at,
            ScheduledFollowUp.created_at,
        )
        .join(Contact, Contact.id == ScheduledFollowUp.contact_id)
        .outerjoin(AutomationCampaign, AutomationCampaign.id == ScheduledFollowUp.campaign_id)
        .where(*conditions)
        .order_by(ScheduledFollowUp.due_at, ScheduledFollowUp.id)
    )
    for fid, contact_id, first, last, *rest in _stream(session, query):
        yield (fid, contact_id, f"{first} {last}".strip(), *rest)


def _stats(session: Session, f: ExportFilter, tz: tzinfo, now: datetime) -> Iterator[Iterable[Any]]:
    stats = automation_stats(
        session, now, StatsFilter(start=f.start, end=f.end, template_id=f.template_id, message_type=f.message_type)
    )
    yield from stats_rows(stats)


def _engagement(session: Session, f: ExportFilter, tz: tzinfo) -> Iterator[Iterable[Any]]:
    """Every engagement event, in time order (by the (occurred_at, kind) index)."""
    conditions: list[ColumnElement[bool]] = []
    if types := as_list(f.message_type):
        # By the step answered: emails, or the SMS a "STOP" answered.
        conditions.append(AutomationStep.message_type.in_(types))
    if window := _range(f):
        conditions += [EngagementEvent.occurred_at >= window[0], EngagementEvent.occurred_at < window[1]]
    if f.contact_id:
        conditions.append(EngagementEvent.contact_id == f.contact_id)
    if f.campaign_id:
        conditions.append(EngagementEvent.campaign_id == f.campaign_id)
    if f.template_id:
        conditions.append(AutomationCampaign.template_id == f.template_id)
    query = (
        select(
            EngagementEvent.occurred_at,
            EngagementEvent.kind,
            Contact.first_name,
            Contact.last_name,
            Contact.email,
            AutomationCampaign.name,
            AutomationTemplate.name,
            AutomationStep.name,
            EngagementEvent.url,
            EngagementEvent.machine,
            EngagementEvent.contact_id,
            EngagementEvent.campaign_id,
            EngagementEvent.step_id,
            EngagementEvent.detail,
        )
        .select_from(EngagementEvent)
        .outerjoin(Contact, Contact.id == EngagementEvent.contact_id)
        .outerjoin(AutomationCampaign, AutomationCampaign.id == EngagementEvent.campaign_id)
        .outerjoin(AutomationTemplate, AutomationTemplate.id == AutomationCampaign.template_id)
        .outerjoin(AutomationStep, AutomationStep.id == EngagementEvent.step_id)
        .where(*conditions)
        .order_by(EngagementEvent.occurred_at, EngagementEvent.id)
    )
    for when, kind, first, last, email, *rest in _stream(session, query):
        yield (when, kind, f"{first or ''} {last or ''}".strip(), email, *rest)


_SOURCES = {
    "contacts": _contacts,
    "campaigns": _campaigns,
    "steps": _steps,
    "calendar": _calendar,
    "follow-ups": _followups,
    "engagement": _engagement,
}


def export_rows(
    session: Session,
    kind: str,
    filters: ExportFilter | None = None,
    *,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> Iterator[Iterable[Any]]:
    """The rows (without header) of export `kind`, streamed."""
    if kind not in COLUMNS:
        raise ValidationError.single("kind", f"must be one of {', '.join(EXPORT_KINDS)}")
    f = filters or ExportFilter()
    if f.start is not None and f.end is not None and as_utc(f.end) <= as_utc(f.start):
        raise ValidationError.single("end", "must be after start")
    zone = tz or get_settings().tz
    if kind == "stats":
        return _stats(session, f, zone, as_utc(now or utcnow()))
    return _SOURCES[kind](session, f, zone)


def iter_csv(
    session: Session,
    kind: str,
    filters: ExportFilter | None = None,
    *,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[bytes]:
    """Export `kind` as UTF-8 CSV, a chunk of bytes at a time (the header first)."""
    rows = export_rows(session, kind, filters, now=now, tz=tz)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS[kind])
    pending = 0
    for row in rows:
        writer.writerow([cell(v) for v in row])
        pending += 1
        if pending >= chunk_rows:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode("utf-8")


def write_csv(
    session: Session,
    kind: str,
    out: IO[bytes],
    filters: ExportFilter | None = None,
    *,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> int:
    """Write export `kind` to the binary stream `out`; returns the number of bytes."""
    written = 0
    for chunk in iter_csv(session, kind, filters, now=now, tz=tz):
        out.write(chunk)
        written += len(chunk)
    return written


def csv_bytes(
    session: Session,
    kind: str,
    filters: ExportFilter | None = None,
    *,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> bytes:
    """The whole export `kind` as bytes (for a download button)."""
    return b"".join(iter_csv(session, kind, filters, now=now, tz=tz))


def export_file_name(kind: str, filters: ExportFilter | None = None) -> str:
    """`steps.csv`, or `calendar_2026-03-01_2026-04-01.csv` for a date range."""
    f = filters or ExportFilter()
    parts = [kind]
    if f.start is not None:
        parts.append(f"{as_utc(f.start):%Y-%m-%d}")
    if f.end is not None:
        parts.append(f"{as_utc(f.end):%Y-%m-%d}")
    return "_".join(parts) + ".csv"


__all__ = [
    "COLUMNS",
    "EXPORT_KINDS",
    "ExportFilter",
    "cell",
    "csv_bytes",
    "export_file_name",
    "export_rows",
    "iter_csv",
    "neutralise",
    "write_csv",
]
