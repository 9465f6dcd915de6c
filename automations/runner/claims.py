"""Claiming due steps atomically, so that any number of runners never execute the
same attempt twice.

A step is claimable when it is pending, due (`due_at <= now`), its campaign is
active, and no earlier step of its campaign is still pending or running. A claim
sets the step `running` with a token, the runner's id and a lease; a step whose
lease ran out (its runner died) goes back to pending and is claimed again.

PostgreSQL: `FOR UPDATE SKIP LOCKED`, so runners take disjoint batches without
waiting for each other. SQLite: the write transaction already holds the database
lock from its first statement (`BEGIN IMMEDIATE`), so the claim is serialised.
The candidate query walks the `(status, due_at)` index from the oldest due step,
so a million future steps cost nothing.

Before a candidate is marked running, the claim checks that it may go out now
(send window, holidays, SMS quiet hours, frequency caps: `holds`); one that may
not is moved to when it may and left pending, its attempt not counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, text, update
from sqlalchemy.orm import Session, aliased

from automations.channels.base import Job
from automations.content.templating import contact_context
from automations.domain.config import get_settings
from automations.domain.db import id_in, insert_rows, table_of
from automations.domain.models import (
    AttemptOutcome,
    AutomationCampaign,
    AutomationStep,
    CampaignStatus,
    Contact,
    ContactTag,
    StepAttempt,
    StepStatus,
)
from automations.domain.schedule import Cap, QuietHours
from automations.runner.holds import hold_steps
from automations.services.scheduling import finish_step

S = AutomationStep
OPEN = (StepStatus.PENDING.value, StepStatus.RUNNING.value)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def release_expired_claims(session: Session, now: datetime, *, max_attempts: int, limit: int = 1000) -> int:
    """Put steps whose runner stopped renewing its lease back to pending, logging
    the lost attempt under that runner's name; a step that already used all its
    attempts fails instead."""
    query = (
        select(S.id, S.attempts, S.claimed_by, S.lease_expires_at)
        .where(S.status == StepStatus.RUNNING.value, S.lease_expires_at < now)
        .order_by(S.due_at)
        .limit(limit)
    )
    if _is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=S)
    rows = session.execute(query).all()
    if not rows:
        return 0

    def detail(row: Any) -> str:
        return (
            f"runner {row.claimed_by} stopped renewing its claim before recording a result "
            f"(lease expired at {row.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC); the step was taken over"
        )

    insert_rows(
        session,
        table_of(StepAttempt),
        [
            {
                "step_id": r.id,
                "attempt_no": r.attempts,
                "runner_id": r.claimed_by,
                "started_at": now,
                "finished_at": now,
                "outcome": AttemptOutcome.RETRY.value,
                "detail": detail(r),
            }
            for r in rows
        ],
    )
    # One statement per dead runner's batch (the rows of a batch share a detail).
    retry: dict[str, list[int]] = {}
    for r in rows:
        if r.attempts < max_attempts:
            retry.setdefault(detail(r), []).append(r.id)
    for text_, ids in retry.items():
        session.execute(
            update(S)
            .where(id_in(session, S.id, ids), S.status == StepStatus.RUNNING.value)
            .values(
                status=StepStatus.PENDING.value,
                claim_token=None,
                claimed_by=None,
                lease_expires_at=None,
                last_error=text_,
            )
            .execution_options(synchronize_session=False)
        )
    exhausted = [r for r in rows if r.attempts >= max_attempts]
    steps = {step.id: step for step in session.scalars(select(S).where(S.id.in_([r.id for r in exhausted])))}
    for r in exhausted:
        finish_step(session, steps[r.id], StepStatus.FAILED, now, error=f"{detail(r)}; no attempts left")
    return len(rows)


def renew_claims(session: Session, token: str, step_ids: Sequence[int], until: datetime) -> int:
    """Extend the lease of the steps of claim `token` that are still held (a live
    runner keeps its claims however slow the channel). Returns how many were held."""
    if not step_ids:
        return 0
    result = session.execute(
        update(S)
        .where(id_in(session, S.id, step_ids), S.claim_token == token, S.status == StepStatus.RUNNING.value)
        .values(lease_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def release_claims(session: Session, token: str, step_ids: Sequence[int]) -> int:
    """Give back steps of claim `token` whose delivery never started (the runner
    is stopping): pending again at once, the attempt not counted, so another
    runner takes them without waiting for the lease."""
    if not step_ids:
        return 0
    result = session.execute(
        update(S)
        .where(id_in(session, S.id, step_ids), S.claim_token == token, S.status == StepStatus.RUNNING.value)
        .values(
            status=StepStatus.PENDING.value,
            claim_token=None,
            claimed_by=None,
            lease_expires_at=None,
            attempts=S.attempts - 1,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def claimable_query(now: datetime, limit: int, *, postgres: bool = False) -> Any:
    """Ids of the steps a runner may take now, oldest due first.

    Steps due at the same time are taken in id order on SQLite, where the
    (status, due_at) index ends with the rowid. A PostgreSQL index has no such
    tail: ordering by id too would sort every due step before the limit (25 ms a
    batch with 10,000 due, seconds with a million), so there the index order is
    the order (the claimed batch is sorted by time and id all the same)."""
    earlier = aliased(S)
    # On SQLite, correlated to the campaign (the same id as the step's), so that
    # it looks for an open earlier step only once the campaign is known to be
    # active: due steps of paused campaigns (28,000 of them in the 1M-step demo
    # database) then cost a primary-key lookup each, not an index search more
    # (claim 100 -> 75 ms there). PostgreSQL plans the anti-join itself.
    blocked = exists().where(
        earlier.campaign_id == (S.campaign_id if postgres else AutomationCampaign.id),
        earlier.position < S.position,
        earlier.status.in_(OPEN),
    )
    return (
        select(S.id)
        .join(AutomationCampaign, AutomationCampaign.id == S.campaign_id)
        .where(
            S.status == StepStatus.PENDING.value,
            S.due_at <= now,
            AutomationCampaign.status == CampaignStatus.ACTIVE.value,
            ~blocked,
        )
        .order_by(*((S.due_at,) if postgres else (S.due_at, S.id)))
        .limit(limit)
    )


@dataclass
class Claimed:
    """A claim: the jobs to execute, and how many due steps were held back instead."""

    jobs: list[Job]
    held: int = 0


def claim_due_steps(
    session: Session,
    runner_id: str,
    now: datetime,
    *,
    limit: int,
    lease: timedelta,
    max_attempts: int,
    caps: Sequence[Cap] | None = None,
    quiet_hours: QuietHours | None | bool = True,
) -> list[Job]:
    """Claim up to `limit` due steps for `runner_id` and return them as jobs
    (contact and content loaded, not yet rendered). Call inside `db.session()`.
    See `claim_batch`."""
    return claim_batch(
        session,
        runner_id,
        now,
        limit=limit,
        lease=lease,
        max_attempts=max_attempts,
        caps=caps,
        quiet_hours=quiet_hours,
    ).jobs


def claim_batch(
    session: Session,
    runner_id: str,
    now: datetime,
    *,
    limit: int,
    lease: timedelta,
    max_attempts: int,
    caps: Sequence[Cap] | None = None,
    quiet_hours: QuietHours | None | bool = True,
) -> Claimed:
    """Claim up to `limit` due steps for `runner_id`, holding back those that may
    not go out now (`holds.hold_steps`). `caps` None: AUTOMATIONS_FREQUENCY_CAP;
    `quiet_hours` True: AUTOMATIONS_SMS_QUIET_HOURS. Call inside `db.session()`."""
    release_expired_claims(session, now, max_attempts=max_attempts)
    postgres = _is_postgres(session)
    query = claimable_query(now, limit, postgres=postgres)
    if postgres:
        ids = _claimable_ids_postgres(session, query.with_for_update(skip_locked=True, of=S))
    else:
        ids = list(session.scalars(query))
    if not ids:
        return Claimed([])
    if caps is None:
        caps = get_settings().caps
    quiet = get_settings().quiet_hours if quiet_hours is True else (quiet_hours or None)
    rows = _job_rows(session, ids)
    holds = hold_steps(session, rows, now, caps=caps, quiet_hours=quiet, postgres=postgres)
    rows = [row for row in rows if row.id not in holds]
    if not rows:
        return Claimed([], len(holds))
    token = uuid.uuid4().hex
    session.execute(
        update(S)
        .where(id_in(session, S.id, [row.id for row in rows]))
        .values(
            status=StepStatus.RUNNING.value,
            claim_token=token,
            claimed_by=runner_id,
            lease_expires_at=now + lease,
            attempts=S.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return Claimed(_jobs(session, rows, token), len(holds))


def _claimable_ids_postgres(session: Session, query: Any) -> list[int]:
    """Run the claim query with the planner held to the (status, due_at) index order.

    The right plan walks that index from the oldest due step and stops after
    `limit` claimable ones. When the statistics lag behind (a burst of steps fell
    due since the last ANALYZE, so PostgreSQL expects a handful), it reads every
    due step and sorts them instead: a whole-backlog read per batch, which made a
    drain quadratic (50 ms a batch with 20,000 due). Sorting is never the better
    plan for this query, so it is priced out for this one statement (should it
    fail, the transaction's rollback undoes the setting)."""
    previous = session.execute(
        text("SELECT current_setting('enable_sort'), set_config('enable_sort', 'off', true)")
    ).scalar_one()
    ids = list(session.scalars(query))
    session.execute(text("SELECT set_config('enable_sort', :value, true)"), {"value": previous})
    return ids


def _job_rows(session: Session, ids: Sequence[int]) -> list[Any]:
    """The candidates with what their jobs need and what the holds read (the
    campaign's schedule, the contact's zone), oldest due first: one query."""
    C, P = AutomationCampaign, Contact
    return list(
        session.execute(
            select(
                S.id,
                S.attempts,
                S.campaign_id,
                S.position,
                S.name,
                S.message_type,
                S.scheduled_at,
                S.due_at,
                S.idempotency_key,
                S.subject,
                S.body,
                S.webhook_url,
                S.webhook_payload,
                C.name.label("campaign_name"),
                C.schedule,
                P.id.label("contact_id"),
                P.first_name,
                P.last_name,
                P.email,
                P.phone,
                P.company,
                P.timezone,
                P.custom_fields,
                P.email_opt_out,
                P.email_bouncing,
                C.tracking,
                P.sms_opt_out,
            )
            .join(C, C.id == S.campaign_id)
            .join(P, P.id == C.contact_id)
            .where(id_in(session, S.id, ids))
            .order_by(S.due_at, S.id)
        ).all()
    )


def _jobs(session: Session, rows: Sequence[Any], token: str) -> list[Job]:
    """The claimed `rows` as jobs of claim `token` (their attempt just counted)."""
    tags: dict[int, list[str]] = {}
    contact_ids = {r.contact_id for r in rows}
    for contact_id, tag in session.execute(
        select(ContactTag.contact_id, ContactTag.tag)
        .where(id_in(session, ContactTag.contact_id, contact_ids))
        .order_by(ContactTag.contact_id, ContactTag.tag)
    ):
        tags.setdefault(contact_id, []).append(tag)
    jobs = []
    for r in rows:
        contact = contact_context(
            {
                "id": r.contact_id,
                "first_name": r.first_name,
                "last_name": r.last_name,
                "full_name": f"{r.first_name} {r.last_name}".strip(),
                "email": r.email,
                "phone": r.phone,
                "company": r.company,
                "timezone": r.timezone,
                "tags": tags.get(r.contact_id, []),
                "custom": dict(r.custom_fields or {}),
            }
        )
        jobs.append(
            Job(
                step_id=r.id,
                token=token,
                attempt_no=r.attempts + 1,
                campaign_id=r.campaign_id,
                campaign_name=r.campaign_name,
                contact_id=r.contact_id,
                position=r.position,
                name=r.name,
                message_type=r.message_type,
                scheduled_at=r.scheduled_at,
                due_at=r.due_at,
                idempotency_key=r.idempotency_key,
                contact=contact,
                email=r.email,
                phone=r.phone,
                email_opt_out=bool(r.email_opt_out),
                email_bouncing=bool(r.email_bouncing),
                track=bool(r.tracking),
                sms_opt_out=bool(r.sms_opt_out),
                subject_source=r.subject or "",
                body_source=r.body or "",
                webhook_url=r.webhook_url,
                webhook_payload=r.webhook_payload,
            )
        )
    return jobs


def due_step_count(session: Session, now: datetime) -> int:
    """How many pending steps are due (for the tick summary and the dashboard)."""
    return (
        session.scalar(
            select(func.count()).select_from(S).where(and_(S.status == StepStatus.PENDING.value, S.due_at <= now))
        )
        or 0
    )
