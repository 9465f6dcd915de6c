"""The schema: typed SQLAlchemy 2 models for every concept of the product.

All times are stored in UTC. `UTCDateTime` keeps them timezone-aware in Python
on every backend (SQLite has no timezone type, so it stores naive UTC).
Migrations under `automations/migrations/` create this schema; change both
together (`python -m automations makemigration "message"`).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from automations.domain.timeutil import UTC, as_utc, utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and always returned timezone-aware (UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            # Naive, fixed-width text sorts chronologically, so range queries and
            # the (status, due_at) index work on SQLite too.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class StrEnum(str, enum.Enum):  # noqa: UP042  (its __str__ is the value, as enum.StrEnum's; kept for stored values' sake)
    def __str__(self) -> str:
        return self.value


class MessageType(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    TASK = "task"
    WEBHOOK = "webhook"


class TemplateCategory(StrEnum):
    NURTURE = "nurture"
    ONBOARDING = "onboarding"
    ENGAGEMENT = "engagement"
    RE_ENGAGEMENT = "re-engagement"
    LAUNCH = "launch"
    CUSTOM = "custom"


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELED = "canceled"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELED = "canceled"


# A step in one of these states is over: the next step of its campaign may run.
FINAL_STEP_STATUSES = frozenset(
    {StepStatus.SENT, StepStatus.DONE, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELED}
)
# Counted as "done" in a campaign's progress.
FINISHED_STEP_STATUSES = frozenset({StepStatus.SENT, StepStatus.DONE, StepStatus.FAILED, StepStatus.SKIPPED})
SUCCESS_STEP_STATUSES = frozenset({StepStatus.SENT, StepStatus.DONE})


class FollowUpStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    CANCELED = "canceled"


class AttemptOutcome(StrEnum):
    SENT = "sent"
    DONE = "done"
    RETRY = "retry"  # transient failure, another attempt is scheduled
    FAILED = "failed"  # permanent failure, or the last attempt
    SKIPPED = "skipped"


class RuleTrigger(StrEnum):
    CONTACT_CREATED = "contact_created"
    TAG_ADDED = "tag_added"
    FIELD_CHANGED = "field_changed"
    CAMPAIGN_COMPLETED = "campaign_completed"
    STEP_FAILED = "step_failed"
    FOLLOWUP_OVERDUE = "followup_overdue"
    INBOUND_EVENT = "inbound_event"
    # Engagement (SPEC section 11)
    EMAIL_OPENED = "email_opened"
    LINK_CLICKED = "link_clicked"
    REPLIED = "replied"
    AUTO_REPLIED = "auto_replied"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"


class RuleAction(StrEnum):
    CREATE_FOLLOWUP = "create_followup"
    START_CAMPAIGN = "start_campaign"


def _new_key() -> str:
    return uuid.uuid4().hex


_naming = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_naming)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    company: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    email_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # A hard bounce: later email steps are skipped until the address is edited.
    email_bouncing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    email_bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tag_rows: Mapped[list[ContactTag]] = relationship(
        back_populates="contact",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="ContactTag.tag",
    )

    __table_args__ = (
        Index(None, "last_name", "first_name"),
        # Duplicate checks compare emails case-insensitively (see domain.search.email_in).
        Index("ix_contacts_lower_email", func.lower(text("email"))),
        # An inbound SMS finds its contacts by number (services.sms_inbound).
        Index(None, "phone"),
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class ContactTag(Base):
    __tablename__ = "contact_tags"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)

    contact: Mapped[Contact] = relationship(back_populates="tag_rows")


class AutomationTemplate(Base):
    __tablename__ = "automation_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32), default=TemplateCategory.CUSTOM.value)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    # Identifies a system template across renames, so seeding stays idempotent.
    system_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # {"timezone": "contact" | IANA, "send_window": {...} | None, "holidays": ... | None,
    #  "frequency_cap_exempt": bool}; None: the defaults (see services.planning).
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # SPEC section 11: a reply stops the campaign; opens and clicks are tracked.
    stop_on_reply: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    tracking: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    steps: Mapped[list[TemplateStep]] = relationship(
        back_populates="template",
        cascade="all, delete-orphan",
        order_by="TemplateStep.position",
        lazy="selectin",
    )


class StepContent:
    """Columns shared by a template's step and a campaign's step."""

    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    message_type: Mapped[str] = mapped_column(String(16))
    delay_days: Mapped[int] = mapped_column(Integer, default=0)
    delay_hours: Mapped[int] = mapped_column(Integer, default=0)
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Time-aware planning (SPEC section 10): delay_days counts only open days of
    # the send window, and the step goes out at this local time ("HH:MM").
    business_days: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    send_at: Mapped[str | None] = mapped_column(String(5))


class TemplateStep(StepContent, Base):
    __tablename__ = "template_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("automation_templates.id", ondelete="CASCADE"), index=True)
    template: Mapped[AutomationTemplate] = relationship(back_populates="steps")


class AutomationCampaign(Base):
    __tablename__ = "automation_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("automation_templates.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.ACTIVE.value)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Copied from the template when the campaign is made from one (same shape).
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    stop_on_reply: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    tracking: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship(lazy="joined")
    template: Mapped[AutomationTemplate | None] = relationship(lazy="joined")
    steps: Mapped[list[AutomationStep]] = relationship(
        back_populates="campaign",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="AutomationStep.position",
    )

    __table_args__ = (
        Index(None, "contact_id", "status"),
        Index(None, "template_id", "status"),
        Index(None, "status", "created_at"),
        Index(None, "created_at"),
        # Statistics count the campaigns started in a range by status (and template)
        # from this index alone (migration 0004).
        Index(None, "start_at", "template_id", "status"),
    )


class AutomationStep(StepContent, Base):
    __tablename__ = "automation_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("automation_campaigns.id", ondelete="CASCADE"))
    # The planned time, shown on the calendar. Moves with late steps and pauses.
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When a runner may next take the step: the planned time, or later after a
    # transient failure (backoff), or "now" for an overdue step of a past start.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    executed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Same on every attempt: webhook-id header, email Message-ID, SMS dedupe.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True, default=_new_key)
    # A runner's claim: who holds the step and until when.
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the planned time is not the plain delay: the send window, a holiday, SMS
    # quiet hours, a frequency cap ("outside the send window (Mon–Fri 09:00–17:00)").
    schedule_note: Mapped[str | None] = mapped_column(Text)
    # The first time the recipient opened, clicked, replied; when it bounced.
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    campaign: Mapped[AutomationCampaign] = relationship(back_populates="steps")
    attempt_log: Mapped[list[StepAttempt]] = relationship(
        back_populates="step",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="StepAttempt.attempt_no",
    )

    __table_args__ = (
        UniqueConstraint("campaign_id", "position"),
        Index(None, "status", "due_at"),
        Index(None, "scheduled_at"),
        Index(None, "executed_at"),
        # Covering indexes: the calendar and statistics count a period's steps by
        # type and status from these alone, without reading the rows (migration 0002).
        Index(
            "ix_automation_steps_executed_at_message_type",
            "executed_at",
            "message_type",
            "status",
            "scheduled_at",
            "campaign_id",
        ),
        Index(
            "ix_automation_steps_scheduled_at_executed_at",
            "scheduled_at",
            "executed_at",
            "message_type",
            "status",
            "campaign_id",
        ),
        # The statistics' template funnel: which steps of a range's campaigns ran,
        # without reading the step rows (migration 0004).
        Index(None, "campaign_id", "position", "status"),
        # The statistics' moved counts (why steps moved): only the steps with a
        # note, few among a million, by planned time (migration 0006).
        Index(
            "ix_automation_steps_scheduled_at_noted",
            "scheduled_at",
            "message_type",
            "status",
            "campaign_id",
            "schedule_note",
            sqlite_where=text("schedule_note IS NOT NULL"),
            postgresql_where=text("schedule_note IS NOT NULL"),
        ),
    )


class ContactDelivery(Base):
    """A message that reached a contact (an email or SMS step recorded as sent):
    what the frequency caps count, by contact, channel and time, from one index."""

    __tablename__ = "contact_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    step_id: Mapped[int | None] = mapped_column(ForeignKey("automation_steps.id", ondelete="SET NULL"), unique=True)

    __table_args__ = (Index(None, "contact_id", "channel", "sent_at"),)


class EngagementEvent(Base):
    """What a recipient did with a message: opened it, clicked a link, replied,
    answered automatically, bounced it, unsubscribed (SPEC section 11)."""

    __tablename__ = "engagement_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # open, click, reply, auto_reply, bounce, unsubscribe
    step_id: Mapped[int | None] = mapped_column(ForeignKey("automation_steps.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("automation_campaigns.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    link_index: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(Text)
    # A mail-privacy proxy or link scanner, not a person: kept out of open rates.
    machine: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    ip: Mapped[str | None] = mapped_column(String(45))  # only with AUTOMATIONS_TRACK_IP=1
    user_agent: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index(None, "step_id", "kind"),
        Index(None, "contact_id", "occurred_at"),
        Index(None, "occurred_at", "kind"),
    )


class InboundMessage(Base):
    """A message that came in (a reply, an auto-reply, a bounce), processed once:
    by its fingerprint when posted to the API, by (mailbox, uid) when polled."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the raw message
    source: Mapped[str] = mapped_column(String(16))  # api or imap
    mailbox: Mapped[str | None] = mapped_column(String(300))  # folder and UIDVALIDITY, for IMAP
    uid: Mapped[int | None] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(998))
    classification: Mapped[str | None] = mapped_column(String(16))  # reply, auto_reply, bounce, unmatched
    step_id: Mapped[int | None] = mapped_column(ForeignKey("automation_steps.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("automation_campaigns.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("mailbox", "uid"),)


class StepAttempt(Base):
    """One try at executing a step, with its outcome (the attempt log)."""

    __tablename__ = "step_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("automation_steps.id", ondelete="CASCADE"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    runner_id: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    step: Mapped[AutomationStep] = relationship(back_populates="attempt_log")

    __table_args__ = (Index(None, "finished_at"),)


class ScheduledFollowUp(Base):
    __tablename__ = "scheduled_followups"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_campaigns.id", ondelete="SET NULL"), index=True
    )
    step_id: Mapped[int | None] = mapped_column(ForeignKey("automation_steps.id", ondelete="SET NULL"), unique=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("followup_rules.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    notes: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=FollowUpStatus.PENDING.value)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact: Mapped[Contact] = relationship(lazy="joined")
    campaign: Mapped[AutomationCampaign | None] = relationship()

    __table_args__ = (Index(None, "status", "due_at"),)


class FollowUpRule(Base):
    """When `trigger` happens to a contact (and `conditions` hold), after a delay, do `action`."""

    __tablename__ = "followup_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger: Mapped[str] = mapped_column(String(32))
    # Trigger parameters: {"tag": ...}, {"field": ..., "value": ...},
    # {"event": ...}, {"days_overdue": N}, {"template_id": ...}.
    trigger_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A list of {"kind": "tag"|"field_equals"|"field_contains"|"opted_in", ...}.
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    delay_days: Mapped[int] = mapped_column(Integer, default=0)
    delay_hours: Mapped[int] = mapped_column(Integer, default=0)
    action: Mapped[str] = mapped_column(String(32))
    # {"title": ..., "notes": ...} or {"template_id": ...}.
    action_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stop_other_campaigns: Mapped[bool] = mapped_column(Boolean, default=False)
    # None: once per contact ever; N: at most once per N days.
    reenroll_after_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index(None, "trigger", "is_active"),)


class ContactEvent(Base):
    """Something that happened to a contact, recorded in the transaction that caused it.

    The runner evaluates unprocessed events against the follow-up rules.
    """

    __tablename__ = "contact_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "processed_at", "id"),)


class RuleExecution(Base):
    """What a rule did (or will do) for a contact: the rule's history."""

    __tablename__ = "rule_executions"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("followup_rules.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("contact_events.id", ondelete="SET NULL"))
    # "pending" until due_at, then "applied" or "skipped" (with the reason in detail).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[str | None] = mapped_column(Text)
    followup_id: Mapped[int | None] = mapped_column(ForeignKey("scheduled_followups.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("automation_campaigns.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("rule_id", "event_id"),
        Index(None, "rule_id", "contact_id", "created_at"),
        Index(None, "status", "due_at"),
    )


class RunnerHeartbeat(Base):
    __tablename__ = "runner_heartbeats"

    runner_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_tick_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AppSetting(Base):
    """Values the product generates once and keeps (the webhook signing secret)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class IdempotentRequest(Base):
    """The first answer to a POST with an `Idempotency-Key` header, kept 24 hours
    so that a client retrying after a timeout gets it again instead of a duplicate."""

    __tablename__ = "idempotent_requests"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    status: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
