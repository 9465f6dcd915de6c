"""Believable demo data: `python -m automations demo [--contacts N]`.

Contacts with campaigns from the system templates in every status, executed
steps (with their attempts and a few failures and skips, and the sent emails and
SMS counted for the frequency caps) up to now, pending steps after now, and
follow-ups. Rows are generated in Python and written with batched inserts, so
`--contacts 100000` (about 1,000,000 steps) takes well under two minutes on
SQLite.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from automations.domain.db import Database
from automations.domain.errors import Conflict
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    CampaignStatus,
    Contact,
    ContactDelivery,
    ContactTag,
    EngagementEvent,
    MessageType,
    ScheduledFollowUp,
    StepAttempt,
    StepStatus,
)
from automations.domain.timeutil import UTC, utcnow
from automations.services.seed import seed_system_templates

FIRST = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Mia",
    "William",
    "Amelia",
    "Benjamin",
    "Harper",
    "Lucas",
    "Evelyn",
    "Henry",
    "Abigail",
    "Alexander",
    "Emily",
    "Daniel",
    "Ella",
    "Matthew",
    "Chloe",
    "Jackson",
    "Grace",
    "Sebastian",
    "Zoe",
    "Samuel",
    "Nora",
    "David",
    "Lily",
    "Joseph",
    "Hannah",
    "Carter",
    "Aria",
    "Owen",
    "Layla",
    "Wyatt",
    "Riley",
    "John",
    "Leah",
    "Jack",
    "Maya",
    "Luke",
    "Sara",
    "Jayden",
    "Ruth",
    "Priya",
    "Arjun",
    "Mei",
    "Kenji",
    "Fatima",
    "Omar",
    "Lucia",
    "Mateo",
    "Ingrid",
    "Lars",
    "Chiara",
    "Marco",
    "Aisha",
    "Kwame",
    "Sofia",
    "Diego",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Kim",
    "Chen",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Larsen",
    "Okafor",
    "Haddad",
    "Tanaka",
    "Novak",
]
COMPANIES = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Retail",
    "Hooli",
    "Vandelay Imports",
    "Soylent Foods",
    "Tyrell Analytics",
    "Wonka Labs",
    "Cyberdyne Systems",
    "Massive Dynamic",
    "Aperture Science",
    "Pied Piper",
    "Oscorp",
    "Gringotts Finance",
    "Monarch Travel",
    "Blue Sun",
    "Nakatomi Trading",
    "Dunder Mifflin",
    "Bluth Homes",
    "Prestige Worldwide",
    "Sterling Cooper",
    "Vehement Capital",
    "Northwind Traders",
    "Contoso",
    "Fabrikam",
    "Tailspin Toys",
    "Litware",
]
TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
)
TAGS = ("lead", "customer", "trial", "vip", "churn-risk", "newsletter", "partner", "enterprise")
PHONE_PREFIXES = ("+1415555", "+1202555", "+1312555", "+1617555")
FAILURES = {
    "email": ("550 5.1.1 mailbox unavailable", "SMTP 451 try again later (5 attempts)"),
    "sms": ("HTTP 400: invalid 'To' number", "HTTP 503 from SMS provider (5 attempts)"),
    "webhook": ("HTTP 404 from target", "connection timed out (5 attempts)"),
    "task": ("contact has no owner",),
}
CHUNK = 20_000


@dataclass(frozen=True)
class DemoSummary:
    contacts: int
    campaigns: int
    steps: int
    attempts: int
    followups: int
    engagements: int = 0

    def __str__(self) -> str:
        return (
            f"demo data: {self.contacts:,} contacts, {self.campaigns:,} campaigns, "
            f"{self.steps:,} steps, {self.attempts:,} attempts, {self.followups:,} follow-ups, "
            f"{self.engagements:,} opens, clicks and replies"
        )


class _Rows:
    """Buffered inserts into one table, flushed in chunks."""

    def __init__(self, session: Session, table: Any, before: tuple[_Rows, ...] = ()):
        self.session, self.table, self.count = session, table, 0
        self.rows: list[dict[str, Any]] = []
        self.before = before  # tables whose rows these rows refer to: written first

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        for parent in self.before:
            parent.flush()
        if not self.rows:
            return
        connection = self.session.connection()
        driver = connection.connection.driver_connection
        assert driver is not None
        if connection.dialect.name == "sqlite":
            # SQLAlchemy's per-value type processing dominates a million-row load;
            # the values are converted here the way the SQLite dialect stores them.
            compiled = insert(self.table).compile(connection, column_keys=list(self.rows[0]))
            columns = compiled.positiontup or []
            cursor = driver.cursor()
            cursor.executemany(compiled.string, [tuple(_sqlite_value(row[c]) for c in columns) for row in self.rows])
            cursor.close()
        elif connection.dialect.name == "postgresql":
            columns = list(self.rows[0])
            column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(self.table.name), column_list)
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for row in self.rows:
                    copy.write_row(tuple(_copy_value(row[c]) for c in columns))
        else:
            self.session.execute(insert(self.table), self.rows)
        self.count += len(self.rows)
        self.rows = []


def _copy_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _advance_sequences(session: Session, tables: list[Any]) -> None:
    """Rows were copied in with explicit ids: move the id sequences past them."""
    for table in tables:
        session.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(table.name, "id"),
                    select(func.coalesce(func.max(table.c.id), 1)).scalar_subquery(),
                )
            )
        )


def _next_id(session: Session, column: Any) -> int:
    return int(session.scalar(select(func.coalesce(func.max(column), 0))) or 0) + 1


def fill_demo(
    db: Database, *, contacts: int = 200, seed: int = 7, force: bool = False, now: datetime | None = None
) -> DemoSummary:
    """Add demo data; refused on a database that already has contacts unless `force`."""
    if contacts < 1 or contacts > 1_000_000:
        raise ValueError("contacts must be between 1 and 1,000,000")
    now = now or utcnow()
    rng = random.Random(seed)
    with db.session() as session:
        if not force and session.scalar(select(func.count()).select_from(Contact)):
            raise Conflict("the database already has contacts; use --force to add demo data anyway")
        seed_system_templates(session)
        templates = session.scalars(
            select(AutomationTemplate).where(AutomationTemplate.is_system.is_(True)).order_by(AutomationTemplate.id)
        ).all()
        template_steps = [(t.id, t.name, list(t.steps)) for t in templates]
        ids = {
            "contact": _next_id(session, Contact.id),
            "campaign": _next_id(session, AutomationCampaign.id),
            "step": _next_id(session, AutomationStep.id),
        }
        writers: dict[str, _Rows] = {}
        writers["contact"] = _Rows(session, Contact.__table__)
        writers["tag"] = _Rows(session, ContactTag.__table__, (writers["contact"],))
        writers["campaign"] = _Rows(session, AutomationCampaign.__table__, (writers["contact"],))
        writers["step"] = _Rows(session, AutomationStep.__table__, (writers["campaign"],))
        writers["attempt"] = _Rows(session, StepAttempt.__table__, (writers["step"],))
        writers["followup"] = _Rows(session, ScheduledFollowUp.__table__, (writers["step"],))
        writers["delivery"] = _Rows(session, ContactDelivery.__table__, (writers["step"],))
        writers["engagement"] = _Rows(session, EngagementEvent.__table__, (writers["step"],))
        # Opens, clicks and replies draw from their own stream, so the campaigns and
        # steps of a seed are the same as before they were added.
        engagement_rng = random.Random(seed * 7919 + 1)
        for contact in _contacts(rng, ids["contact"], contacts, now):
            writers["contact"].add(contact["row"])
            for tag in contact["tags"]:
                writers["tag"].add({"contact_id": contact["row"]["id"], "tag": tag})
        writers["contact"].flush()
        writers["tag"].flush()

        campaign_id, step_id = ids["campaign"], ids["step"]
        for index in range(contacts):
            contact_id = ids["contact"] + index
            opted = (index % 37 == 0, index % 41 == 0)  # (email, sms) opt-outs
            for _ in range(rng.choice((1, 2, 2, 2, 3))):
                template_id, name, steps = rng.choice(template_steps)
                step_id = _campaign(
                    rng,
                    writers,
                    now,
                    campaign_id,
                    step_id,
                    contact_id,
                    template_id,
                    name,
                    steps,
                    opted,
                    engagement_rng,
                )
                campaign_id += 1
        for _ in range(max(3, contacts // 20)):  # follow-ups added by hand
            due = now + timedelta(hours=rng.randint(-72, 24 * 14))
            writers["followup"].add(
                _followup(
                    ids["contact"] + rng.randrange(contacts),
                    None,
                    None,
                    "Call back about pricing question",
                    due,
                    now,
                    rng,
                )
            )
        for writer in writers.values():
            writer.flush()
        if session.connection().dialect.name == "postgresql":
            _advance_sequences(session, [w.table for w in writers.values() if "id" in w.table.c])
    return DemoSummary(
        contacts=writers["contact"].count,
        campaigns=writers["campaign"].count,
        steps=writers["step"].count,
        attempts=writers["attempt"].count,
        followups=writers["followup"].count,
        engagements=writers["engagement"].count,
    )


def _contacts(rng: random.Random, first_id: int, count: int, now: datetime) -> Iterator[dict[str, Any]]:
    run = uuid.uuid4().hex[:4]
    for index in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = rng.choice(COMPANIES)
        domain = company.lower().replace(" ", "") + ".example"
        created = now - timedelta(days=rng.uniform(10, 400))
        yield {
            "row": {
                "id": first_id + index,
                "first_name": first,
                "last_name": last,
                "email": f"{first.lower()}.{last.lower()}.{run}{first_id + index}@{domain}",
                "phone": f"{rng.choice(PHONE_PREFIXES)}{rng.randint(100, 199):04d}" if rng.random() < 0.8 else None,
                "company": company,
                "timezone": rng.choice(TIMEZONES),
                "custom_fields": {
                    "plan": rng.choice(("starter", "growth", "enterprise")),
                    "source": rng.choice(("website", "referral", "event", "ads")),
                },
                "email_opt_out": index % 37 == 0,
                "sms_opt_out": index % 41 == 0,
                "email_bouncing": False,
                "email_bounced_at": None,
                "created_at": created,
                "updated_at": created,
            },
            "tags": rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3))),
        }


def _campaign(
    rng: random.Random,
    writers: dict[str, _Rows],
    now: datetime,
    campaign_id: int,
    step_id: int,
    contact_id: int,
    template_id: int,
    template_name: str,
    steps: list[Any],
    opted: tuple[bool, bool],
    engagement_rng: random.Random,
) -> int:
    start = now - timedelta(days=rng.uniform(-14, 150), hours=rng.uniform(0, 24))
    roll = rng.random()
    stop_at: datetime | None = None  # paused or canceled from this time on
    status = CampaignStatus.ACTIVE.value
    if roll < 0.06:
        status, stop_at = CampaignStatus.CANCELED.value, start + timedelta(days=rng.uniform(0, 12))
    elif roll < 0.12:
        status = CampaignStatus.PAUSED.value
        stop_at = min(now, start + timedelta(days=rng.uniform(0, 10)))
    stop_at = min(stop_at, now) if stop_at else None
    cutoff = stop_at or now
    when = start
    open_steps = 0
    last_done = start
    step_rows: list[dict[str, Any]] = []
    children: list[tuple[str, dict[str, Any]]] = []  # attempts and follow-ups of these steps
    for position, step in enumerate(steps):
        when = when + timedelta(days=step.delay_days, hours=step.delay_hours)
        row = {
            "id": step_id,
            "campaign_id": campaign_id,
            "position": position,
            "name": step.name,
            "message_type": step.message_type,
            "delay_days": step.delay_days,
            "delay_hours": step.delay_hours,
            "subject": step.subject,
            "body": step.body,
            "webhook_url": step.webhook_url,
            "webhook_payload": step.webhook_payload,
            "business_days": False,
            "send_at": None,
            "schedule_note": None,
            "opened_at": None,
            "clicked_at": None,
            "replied_at": None,
            "bounced_at": None,
            "scheduled_at": when,
            "due_at": when,
            "attempts": 0,
            "last_error": None,
            "executed_at": None,
            "result": None,
            "idempotency_key": uuid.uuid4().hex,
            "claim_token": None,
            "claimed_by": None,
            "lease_expires_at": None,
            "status": StepStatus.PENDING.value,
        }
        if when < cutoff:
            _executed(rng, children, row, step, contact_id, campaign_id, opted, now)
            last_done = row["executed_at"]
        elif status == CampaignStatus.CANCELED.value:
            row["status"] = StepStatus.CANCELED.value
        else:
            open_steps += 1
        step_rows.append(row)
        step_id += 1
    if status == CampaignStatus.ACTIVE.value and not open_steps:
        status = CampaignStatus.COMPLETED.value
    if status == CampaignStatus.PAUSED.value and not open_steps:
        status = CampaignStatus.COMPLETED.value
    writers["campaign"].add(
        {
            "id": campaign_id,
            "name": template_name,
            "contact_id": contact_id,
            "template_id": template_id,
            "status": status,
            "start_at": start,
            "schedule": None,
            "stop_on_reply": True,
            "tracking": True,
            "paused_at": stop_at if status == CampaignStatus.PAUSED.value else None,
            "completed_at": last_done if status == CampaignStatus.COMPLETED.value else None,
            "canceled_at": stop_at if status == CampaignStatus.CANCELED.value else None,
            "created_at": min(start, now),
            "updated_at": min(last_done, now),
        }
    )
    replied_to = _engagement(engagement_rng, children, step_rows, contact_id, campaign_id, now)
    if replied_to is not None and status == CampaignStatus.CANCELED.value and stop_at is not None:
        # The campaign was stopped by the reply (`stop_on_reply`).
        replied_to["replied_at"] = stop_at
        said = {"first_lines": engagement_rng.choice(DEMO_REPLIES)}
        reply = _demo_event("reply", replied_to, contact_id, campaign_id, stop_at, detail=said)
        children.append(("engagement", reply))
    for row in step_rows:
        writers["step"].add(row)
    for table, row in children:
        writers[table].add(row)
    return step_id


# What demo recipients do with the emails: how often (of the emails sent).
MACHINE_OPENS, OPENS, CLICKS_OF_OPENS, REPLIES = 0.2, 0.45, 0.25, 0.6
DEMO_LINKS = (
    "https://example.com/pricing",
    "https://example.com/guides/first-sequence",
    "https://example.com/book-a-call",
)
DEMO_REPLIES = (
    "Thanks, not right now. Maybe next quarter.",
    "Yes, happy to talk. Thursday afternoon works for me.",
    "Please send me the pricing for a team of five.",
)


def _demo_event(
    kind: str, step: dict[str, Any], contact_id: int, campaign_id: int, when: datetime, **more: Any
) -> dict[str, Any]:
    row = {
        "kind": kind,
        "step_id": step["id"],
        "campaign_id": campaign_id,
        "contact_id": contact_id,
        "occurred_at": when,
        "link_index": None,
        "url": None,
        "machine": False,
        "ip": None,
        "user_agent": None,
        "detail": None,
    }
    row.update(more)
    return row


def _engagement(
    rng: random.Random,
    children: list[tuple[str, dict[str, Any]]],
    step_rows: list[dict[str, Any]],
    contact_id: int,
    campaign_id: int,
    now: datetime,
) -> dict[str, Any] | None:
    """Opens (a privacy proxy's among them) and clicks of the campaign's sent emails;
    the last sent email, which a reply may have answered (the caller decides)."""
    last_sent: dict[str, Any] | None = None
    for row in step_rows:
        if row["message_type"] != MessageType.EMAIL.value or row["status"] != StepStatus.SENT.value:
            continue
        last_sent = row
        sent = row["executed_at"]
        if rng.random() < MACHINE_OPENS:
            proxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
            at = min(sent + timedelta(seconds=2), now)
            children.append(("engagement", _demo_event("open", row, contact_id, campaign_id, at, machine=True,
                                                        user_agent=proxy)))  # fmt: skip
        if rng.random() >= OPENS:
            continue
        opened = min(sent + timedelta(minutes=min(rng.lognormvariate(4, 1.5), 20_000)), now)
        row["opened_at"] = opened
        reader = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        children.append(("engagement", _demo_event("open", row, contact_id, campaign_id, opened, user_agent=reader)))
        if rng.random() < CLICKS_OF_OPENS:
            clicked = min(opened + timedelta(seconds=rng.uniform(5, 600)), now)
            link = rng.randrange(len(DEMO_LINKS))
            row["clicked_at"] = clicked
            children.append(("engagement", _demo_event("click", row, contact_id, campaign_id, clicked,
                                                        user_agent=reader, link_index=link,
                                                        url=DEMO_LINKS[link])))  # fmt: skip
    if last_sent is None or rng.random() >= REPLIES:
        return None
    return last_sent


def _executed(
    rng: random.Random,
    children: list[tuple[str, dict[str, Any]]],
    row: dict[str, Any],
    step: Any,
    contact_id: int,
    campaign_id: int,
    opted: tuple[bool, bool],
    now: datetime,
) -> None:
    kind = step.message_type
    lag = timedelta(seconds=min(rng.lognormvariate(0.7, 0.9), 600))
    executed = min(row["scheduled_at"] + lag, now)
    attempts, outcome, detail = 1, ("done" if kind == MessageType.TASK.value else "sent"), None
    if (kind == "email" and opted[0]) or (kind == "sms" and opted[1]):
        outcome, detail = StepStatus.SKIPPED.value, f"contact opted out of {kind}"
    elif rng.random() < 0.03:
        detail = rng.choice(FAILURES[kind])
        outcome = StepStatus.FAILED.value
        if "attempts" in detail:
            attempts = 5
            executed = executed + timedelta(minutes=31)
    row.update(status=outcome, attempts=attempts, executed_at=executed, last_error=detail, result={"demo": True})
    for number in range(1, attempts + 1):
        final = number == attempts
        children.append(
            (
                "attempt",
                {
                    "step_id": row["id"],
                    "attempt_no": number,
                    "runner_id": "demo",
                    "started_at": executed - timedelta(seconds=1),
                    "finished_at": executed,
                    "outcome": outcome if final else "retry",
                    "detail": detail,
                    "result": None,
                },
            )
        )
    if outcome == StepStatus.SENT.value and kind in (MessageType.EMAIL.value, MessageType.SMS.value):
        children.append(
            ("delivery", {"contact_id": contact_id, "channel": kind, "sent_at": executed, "step_id": row["id"]})
        )
    if kind == MessageType.TASK.value and outcome == "done":
        children.append(
            (
                "followup",
                _followup(
                    contact_id, campaign_id, row["id"], row["subject"] or step.name, row["scheduled_at"], now, rng
                ),
            )
        )


def _followup(
    contact_id: int,
    campaign_id: int | None,
    step_id: int | None,
    title: str,
    due: datetime,
    now: datetime,
    rng: random.Random,
) -> dict[str, Any]:
    done = due < now - timedelta(days=2) and rng.random() < 0.85
    return {
        "contact_id": contact_id,
        "campaign_id": campaign_id,
        "step_id": step_id,
        "rule_id": None,
        "title": _plain(title),
        "notes": "",
        "due_at": due,
        "status": "done" if done else "pending",
        "completed_at": due + timedelta(hours=rng.uniform(1, 30)) if done else None,
        "created_at": min(due, now),
    }


def _plain(title: str) -> str:
    """Task titles in templates are Jinja; the demo's follow-ups read naturally."""
    if "{{" in title:
        return title.split("{{", 1)[0].strip() + " the contact"
    return title
