"""Claim-time holds (SPEC section 10): a due step that may not go out now waits
instead of being claimed.

- Send window, holidays, SMS quiet hours. Planned times respect them, but a step
  can still fall due outside them: an SMS overdue after an outage that ends at
  23:00 in the contact's clock, a retry whose backoff ends after the window
  closed. Such a step moves to the first time it may go out. A step that could
  have gone within `LATE_GRACE` goes: one planned for 16:59:50 in a window that
  closes at 17:00 is not held a day for the runner's poll delay.
- Frequency caps (`AUTOMATIONS_FREQUENCY_CAP`): a contact's messages of a channel
  in the current calendar day or ISO week of the contact's zone, across
  campaigns, are those delivered (`contact_deliveries`), those in flight (steps
  `running`, claimed by any runner) and those accepted earlier in the same
  batch. A step over a cap moves to the start of the next period, then into its
  campaign's window; it is never dropped or failed.

A held step stays pending with no attempt counted; `scheduled_at` and `due_at`
take the new time and `schedule_note` the reason, and the later pending steps
of its campaign move with it, gaps kept (`planning.shift_plan`).

Several runners: on PostgreSQL the claim transaction locks the contacts whose
messages it counts (in id order) before counting, so two runners cannot both
send a contact's third email of a day; a SQLite claim is serialised already.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import null, select, union_all
from sqlalchemy.orm import Session

from automations.domain.db import id_in
from automations.domain.models import AutomationCampaign, AutomationStep, Contact, ContactDelivery, StepStatus
from automations.domain.schedule import Cap, Planned, Planner, QuietHours
from automations.domain.timeutil import as_utc
from automations.runner.replanning import campaign_planner, pending_steps, shift, write_times
from automations.services.planning import cap_exempt, planner_for
from automations.services.scheduling import LATE_GRACE

S = AutomationStep
CONTACT_CLOCK = {"timezone": "contact"}  # whose day and week the caps count in


@dataclass(frozen=True)
class Hold:
    at: datetime  # when the step may go out
    note: str  # why it waits


def hold_steps(
    session: Session,
    rows: Sequence[Any],
    now: datetime,
    *,
    caps: Sequence[Cap],
    quiet_hours: QuietHours | None,
    postgres: bool,
) -> dict[int, Hold]:
    """Decide which candidate steps (`rows`, in claim order, each with id,
    campaign_id, position, message_type, scheduled_at, schedule, contact_id and
    timezone) wait, and write their new times. Returns the holds by step id."""
    holds: dict[int, Hold] = {}
    capped_channels = {cap.channel for cap in caps}
    capped: list[Any] = []
    open_now: dict[tuple[Planner, bool], Planned] = {}  # one fit per clock and kind in a batch
    for row in rows:
        sms = row.message_type == "sms"
        # Most steps have neither window nor holidays, and are not SMS under
        # quiet hours: nothing to plan for them.
        if _constrained(row.schedule, sms, quiet_hours):
            planner = planner_for(row.schedule, row.timezone, quiet_hours=quiet_hours)
            hold = _outside(planner, row, sms, now, open_now)
            if hold is not None:
                holds[row.id] = hold
                continue
        if row.message_type in capped_channels and not cap_exempt(row.schedule):
            capped.append(row)
    if capped:
        holds.update(_over_caps(session, capped, now, caps, quiet_hours, postgres))
    if holds:
        _defer(session, [row for row in rows if row.id in holds], holds, quiet_hours)
    return holds


def _constrained(schedule: dict[str, Any] | None, sms: bool, quiet_hours: QuietHours | None) -> bool:
    if sms and quiet_hours is not None:
        return True
    return bool(schedule and (schedule.get("send_window") or schedule.get("holidays")))


def _outside(
    planner: Planner, row: Any, sms: bool, now: datetime, open_now: dict[tuple[Planner, bool], Planned]
) -> Hold | None:
    """The hold of a step that may not go out at `now`, or None."""
    key = (planner, sms)
    if key not in open_now:
        open_now[key] = planner.fit(now, sms=sms)
    fitted = open_now[key]
    if fitted.at <= now:
        return None
    # Allowed at some moment since its time, within the grace: it goes.
    since = max(as_utc(row.scheduled_at), now - LATE_GRACE)
    if since < now and planner.fit(since, sms=sms).at <= now:
        return None
    return Hold(fitted.at, fitted.note or "outside the send window")


def _over_caps(
    session: Session,
    rows: Sequence[Any],
    now: datetime,
    caps: Sequence[Cap],
    quiet_hours: QuietHours | None,
    postgres: bool,
) -> dict[int, Hold]:
    """The holds of the email/SMS steps among `rows` (in claim order) that would
    take their contact over a cap: to the end of the period, then into the window."""
    contact_ids = sorted({row.contact_id for row in rows})
    if postgres:
        # FOR NO KEY UPDATE: claims of the same contacts wait for each other, while
        # the foreign-key checks of a recording (its contact_deliveries and
        # contact_events rows) do not wait for the claim.
        session.execute(
            select(Contact.id)
            .where(id_in(session, Contact.id, contact_ids))
            .order_by(Contact.id)
            .with_for_update(key_share=True)
        )
    periods = {cap.period for cap in caps}
    bounds: dict[tuple[int, str], tuple[datetime, datetime]] = {}
    for row in rows:
        clock = planner_for(CONTACT_CLOCK, row.timezone, quiet_hours=None)
        for period in periods:
            bounds[(row.contact_id, period)] = period_bounds(clock, now, period)
    channels = sorted({row.message_type for row in rows})
    delivered, running = _messages(
        session,
        contact_ids,
        channels,
        min(start for start, _ in bounds.values()),
        max(end for _, end in bounds.values()),
    )
    used: Counter[tuple[int, str, str]] = Counter()
    for (contact_id, channel), times in delivered.items():
        for period in periods:
            start, end = bounds[(contact_id, period)]
            used[(contact_id, channel, period)] = sum(1 for t in times if start <= t < end)
    accepted: Counter[tuple[int, str]] = Counter()  # earlier in this batch
    holds: dict[int, Hold] = {}
    for row in rows:
        key = (row.contact_id, row.message_type)
        worst: tuple[datetime, Cap] | None = None
        for cap in caps:
            if cap.channel != row.message_type:
                continue
            count = used[(*key, cap.period)] + running[key] + accepted[key]
            if count >= cap.limit:
                end = bounds[(row.contact_id, cap.period)][1]
                if worst is None or end > worst[0]:
                    worst = (end, cap)
        if worst is None:
            accepted[key] += 1
            continue
        end, cap = worst
        planner = planner_for(row.schedule, row.timezone, quiet_hours=quiet_hours)
        fitted = planner.fit(end, sms=row.message_type == "sms")
        note = f"frequency cap {cap.describe()}: deferred to the next {cap.period}"
        holds[row.id] = Hold(fitted.at, f"{note}; {fitted.note}" if fitted.note else note)
    return holds


def period_bounds(clock: Planner, now: datetime, period: str) -> tuple[datetime, datetime]:
    """The calendar day or ISO week of `clock`'s zone holding `now`, in UTC
    (a midnight that does not exist starts the day when the clocks resume)."""
    day: date = clock.local(now).date()
    if period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start, end = day, day + timedelta(days=1)
    return clock.utc(datetime.combine(start, datetime.min.time())), clock.utc(
        datetime.combine(end, datetime.min.time())
    )


def _messages(
    session: Session, contact_ids: list[int], channels: list[str], since: datetime, until: datetime
) -> tuple[dict[tuple[int, str], list[datetime]], Counter[tuple[int, str]]]:
    """The contacts' messages delivered in [since, until) and those in flight, by
    (contact, channel). One statement, so that both parts see the same moment: a
    recording committing in between (steps sent and their deliveries written
    together) is counted once, never missed."""
    D, C = ContactDelivery, AutomationCampaign
    delivered_q = select(D.contact_id, D.channel, D.sent_at).where(
        id_in(session, D.contact_id, contact_ids), D.channel.in_(channels), D.sent_at >= since, D.sent_at < until
    )
    running_q = (
        select(C.contact_id, S.message_type, null())
        .join(C, C.id == S.campaign_id)
        .where(S.status == StepStatus.RUNNING.value, id_in(session, C.contact_id, contact_ids))
        .where(S.message_type.in_(channels))
    )
    delivered: dict[tuple[int, str], list[datetime]] = {}
    running: Counter[tuple[int, str]] = Counter()
    result: Any = session.execute(union_all(delivered_q, running_q))
    for row in result:
        key = (int(row.contact_id), str(row.channel))
        if row.sent_at is None:
            running[key] += 1
        else:
            delivered.setdefault(key, []).append(as_utc(row.sent_at))
    return delivered, running


def _defer(session: Session, held: Sequence[Any], holds: dict[int, Hold], quiet_hours: QuietHours | None) -> None:
    """Write the holds, and move the later pending steps of their campaigns by as
    much (re-fitted, gaps kept). One read and one executemany for the batch."""
    by_campaign = {row.campaign_id: row for row in held}
    moved = []
    for campaign_id, steps in pending_steps(session, by_campaign).items():
        row = by_campaign[campaign_id]
        hold = holds[row.id]
        # The held step first, so that the next one keeps its delay after the new time.
        steps = [s for s in steps if s.position >= row.position]
        shift(campaign_planner(steps[0], quiet_hours), steps, hold.at - as_utc(row.scheduled_at))
        for step in steps:
            if step.id == row.id:
                step.scheduled_at, step.due_at, step.schedule_note, step.changed = hold.at, hold.at, hold.note, True
        moved += steps
    write_times(session, moved)
