"""Planning a campaign's steps in the recipient's clock (SPEC section 10).

Every place that computes a step's time goes through here: creating a campaign,
the builder's preview, editing pending steps, the late-step shift, resuming
after a pause and the runner's claim (quiet hours and frequency caps). A
campaign's `schedule` (copied from its template) says whose clock, which send
window and which holidays; `planner_for` turns it and the contact's zone into a
`domain.schedule.Planner`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from automations.domain.config import get_settings
from automations.domain.schedule import DAY_NAMES, Planned, Planner, QuietHours, SendWindow, parse_hhmm
from automations.domain.timeutil import as_utc

DEFAULT_SCHEDULE: dict[str, Any] = {
    "timezone": "contact",
    "send_window": None,
    "holidays": None,
    "frequency_cap_exempt": False,
}


class PlannedStep(Protocol):
    delay_days: int
    delay_hours: int
    message_type: Any
    business_days: bool
    send_at: str | None


def schedule_json(schedule: Mapping[str, Any] | Any | None) -> dict[str, Any]:
    """A validated schedule (a `ScheduleInput` or its dict) as stored, every key present."""
    if schedule is None:
        return dict(DEFAULT_SCHEDULE)
    raw = schedule.model_dump() if hasattr(schedule, "model_dump") else dict(schedule)
    window = raw.get("send_window")
    return {
        "timezone": raw.get("timezone") or "contact",
        "send_window": None if not window else {k: window[k] for k in ("days", "start", "end")},
        "holidays": raw.get("holidays") or None,
        "frequency_cap_exempt": bool(raw.get("frequency_cap_exempt")),
    }


def cap_exempt(schedule: Mapping[str, Any] | None) -> bool:
    return bool(schedule and schedule.get("frequency_cap_exempt"))


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_name(schedule: Mapping[str, Any] | None, contact_timezone: str | None) -> str:
    """The IANA zone the steps are planned in: the schedule's fixed zone, or the
    contact's own ("contact"), falling back to AUTOMATIONS_TIMEZONE."""
    fixed = (schedule or {}).get("timezone") or "contact"
    if fixed != "contact" and _zone(fixed) is not None:
        return str(fixed)
    if _zone(contact_timezone) is not None:
        return str(contact_timezone)
    return get_settings().timezone


def _window(raw: Any) -> SendWindow | None:
    if not isinstance(raw, Mapping) or not raw.get("days"):
        return None
    days = frozenset(DAY_NAMES.index(day) for day in raw["days"] if day in DAY_NAMES)
    return SendWindow(days, parse_hhmm(raw["start"]), parse_hhmm(raw["end"])) if days else None


@lru_cache(maxsize=512)
def _planner(zone: str, window: SendWindow | None, holidays: str | None, quiet: QuietHours | None) -> Planner:
    return Planner(ZoneInfo(zone), window, holidays, quiet)


def planner_for(
    schedule: Mapping[str, Any] | None,
    contact_timezone: str | None,
    *,
    quiet_hours: QuietHours | None | bool = True,
) -> Planner:
    """The planner of a campaign's schedule for a contact (cached: planners are
    immutable). `quiet_hours=True` takes AUTOMATIONS_SMS_QUIET_HOURS."""
    quiet = get_settings().quiet_hours if quiet_hours is True else (quiet_hours or None)
    schedule = schedule or {}
    return _planner(
        zone_name(schedule, contact_timezone), _window(schedule.get("send_window")), schedule.get("holidays"), quiet
    )


def _send_at(value: str | None) -> time | None:
    return parse_hhmm(value) if value else None


def _is_sms(step: PlannedStep) -> bool:
    return str(getattr(step.message_type, "value", step.message_type)) == "sms"


def next_planned(planner: Planner, previous: datetime, step: PlannedStep) -> Planned:
    """`step`'s time after `previous` (the previous step's planned time, or the start)."""
    return planner.next_time(
        previous,
        step.delay_days,
        step.delay_hours,
        business_days=bool(step.business_days),
        send_at=_send_at(step.send_at),
        sms=_is_sms(step),
    )


def plan_steps(planner: Planner, anchor: datetime, steps: Sequence[PlannedStep], now: datetime) -> list[Planned]:
    """Each step's time and note: its delay from the previous step's planned time
    (the first from `anchor`), moved into the window; a time already past is due
    at the first allowed moment from `now` (an overdue step of a past start)."""
    plans: list[Planned] = []
    previous = as_utc(anchor)
    now = as_utc(now)
    for step in steps:
        planned = next_planned(planner, previous, step)
        previous = planned.at
        if planned.at < now:
            planned = planner.fit(now, sms=_is_sms(step))
        plans.append(planned)
    return plans


@dataclass(frozen=True)
class Shifted:
    step: Any
    at: datetime
    note: str | None


def shift_plan(planner: Planner, pending: Sequence[Any], delta: timedelta) -> list[Shifted]:
    """Move pending steps (in position order, each with `scheduled_at`) by `delta`
    and re-fit them: each lands at or after its old time plus `delta`, inside the
    window, and at least its delay after the step before it, so gaps are kept."""
    shifted: list[Shifted] = []
    previous: datetime | None = None
    for step in pending:
        sms = _is_sms(step)
        moved = planner.fit(as_utc(step.scheduled_at) + delta, sms=sms)
        if previous is not None:
            chained = next_planned(planner, previous, step)
            if chained.at > moved.at:
                moved = chained
        note = moved.note if moved.note is not None else step.schedule_note
        shifted.append(Shifted(step, moved.at, note))
        previous = moved.at
    return shifted


__all__ = [
    "DEFAULT_SCHEDULE",
    "Shifted",
    "cap_exempt",
    "next_planned",
    "plan_steps",
    "planner_for",
    "schedule_json",
    "shift_plan",
    "zone_name",
]
