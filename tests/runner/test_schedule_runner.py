"""Time-aware scheduling at claim time (SPEC section 10): frequency caps counted
in the contact's own day and ISO week across campaigns (delivered, in flight,
and earlier in the same batch), steps held for their send window or SMS quiet
hours instead of being claimed, the steps after a held or late step moving with
it, and the same with real runner processes on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta
from pathlib import Path
from time import sleep
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from automations.channels.base import Job
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import AutomationStep, ContactDelivery
from automations.domain.schedule import parse_caps, parse_quiet_hours
from automations.domain.timeutil import UTC, utcnow
from automations.runner.claims import claim_due_steps
from automations.runner.engine import Runner
from automations.services.campaigns import create_campaign
from tests.channels.support import add_contact, steps_and_attempts
from tests.conftest import NOW
from tests.runner.support import start_runner, stop_all, wait_until

WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
WEEKDAYS_NOTE = "outside the send window (Mon, Tue, Wed, Thu, Fri 09:00–17:00)"


def email(name: str = "Mail", **delay: int) -> dict[str, Any]:
    return {"name": name, "message_type": "email", "subject": "Hi", "body": "Hello", **_delay(delay)}


def sms(name: str = "Text", **delay: int) -> dict[str, Any]:
    return {"name": name, "message_type": "sms", "body": "Hello", **_delay(delay)}


def task(name: str = "Call", **delay: int) -> dict[str, Any]:
    return {"name": name, "message_type": "task", "subject": name, **_delay(delay)}


def _delay(delay: dict[str, int]) -> dict[str, int]:
    return {"delay_days": delay.get("days", 0), "delay_hours": delay.get("hours", 0)}


def campaign(
    db: Database,
    contact_id: int,
    steps: list[dict[str, Any]],
    *,
    start_at: datetime,
    schedule: dict[str, Any] | None = None,
    name: str = "Welcome",
) -> list[int]:
    """A campaign planned at `start_at`; the ids of its steps."""
    data: dict[str, Any] = {"name": name, "contact_id": contact_id, "start_at": start_at, "steps": steps}
    if schedule is not None:
        data["schedule"] = schedule
    with db.session() as s:
        created = create_campaign(s, data, now=start_at, allow_private=True)
        s.flush()
        return [step.id for step in created.steps]


def delivered(db: Database, contact_id: int, *times: datetime, channel: str = "email") -> None:
    with db.session() as s:
        s.execute(
            insert(ContactDelivery),
            [{"contact_id": contact_id, "channel": channel, "sent_at": t, "step_id": None} for t in times],
        )


def claim(
    db: Database, now: datetime, *, caps: str = "", quiet: str = "off", limit: int = 50, runner: str = "r1"
) -> list[Job]:
    with db.session() as s:
        return claim_due_steps(
            s,
            runner,
            now,
            limit=limit,
            lease=timedelta(minutes=5),
            max_attempts=3,
            caps=parse_caps(caps),
            quiet_hours=parse_quiet_hours(quiet),
        )


def steps_by_id(db: Database) -> dict[int, AutomationStep]:
    return {step.id: step for step in steps_and_attempts(db)[0]}


def assert_waiting(step: AutomationStep, at: datetime, note: str) -> None:
    """Held back, not failed: pending at its new time, no attempt counted."""
    assert (step.status, step.attempts, step.claimed_by) == ("pending", 0, None)
    assert step.scheduled_at == at and step.due_at == at
    assert step.schedule_note == note


# --- frequency caps ------------------------------------------------------------


def test_a_day_cap_counts_the_contacts_own_day_and_this_batch(db: Database) -> None:
    # NOW is 01:00 on Monday in Los Angeles: a message at 23:00 the evening before
    # (07:00 UTC, the same UTC day) is yesterday's; one at 00:30 is today's.
    contact = add_contact(db, NOW - timedelta(days=1), timezone="America/Los_Angeles")
    delivered(db, contact, datetime(2026, 3, 2, 7, 0, tzinfo=UTC), datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    [first] = campaign(db, contact, [email()], start_at=NOW - timedelta(minutes=2), name="A")
    [second] = campaign(db, contact, [email()], start_at=NOW - timedelta(minutes=1), name="B")
    [text] = campaign(db, contact, [sms()], start_at=NOW - timedelta(minutes=1), name="C")
    [call] = campaign(db, contact, [task()], start_at=NOW - timedelta(minutes=1), name="D")
    jobs = claim(db, NOW, caps="email:2/day")
    assert sorted(job.step_id for job in jobs) == sorted([first, text, call])  # no cap on SMS or tasks
    next_local_day = datetime(2026, 3, 3, 0, 0, tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(UTC)
    assert next_local_day == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert_waiting(steps_by_id(db)[second], next_local_day, "frequency cap email 2/day: deferred to the next day")
    assert steps_and_attempts(db)[1] == []  # no attempt logged for a held step
    assert second in [job.step_id for job in claim(db, next_local_day, caps="email:2/day")]


def test_a_week_cap_counts_the_contacts_iso_week(db: Database) -> None:
    # NOW is Monday 18:00 in Tokyo. Sunday 23:00 there is last week; Monday 05:00
    # and 10:00 are this week (though the first is a Sunday in UTC).
    tokyo = ZoneInfo("Asia/Tokyo")
    contact = add_contact(db, NOW - timedelta(days=1), timezone="Asia/Tokyo")
    delivered(
        db,
        contact,
        datetime(2026, 3, 1, 23, 0, tzinfo=tokyo),
        datetime(2026, 3, 2, 5, 0, tzinfo=tokyo),
        datetime(2026, 3, 2, 10, 0, tzinfo=tokyo),
    )
    [first] = campaign(db, contact, [email()], start_at=NOW - timedelta(minutes=2), name="A")
    [second] = campaign(db, contact, [email()], start_at=NOW - timedelta(minutes=1), name="B")
    jobs = claim(db, NOW, caps="email:3/week,email:5/day")
    assert [job.step_id for job in jobs] == [first]
    next_monday = datetime(2026, 3, 9, 0, 0, tzinfo=tokyo).astimezone(UTC)
    assert_waiting(steps_by_id(db)[second], next_monday, "frequency cap email 3/week: deferred to the next week")


def test_a_capped_step_moves_into_the_window_and_the_steps_after_it_follow(db: Database) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    friday = datetime(2026, 3, 6, 10, 0, tzinfo=berlin)
    contact = add_contact(db, friday - timedelta(days=1), timezone="Europe/Berlin")
    delivered(db, contact, datetime(2026, 3, 6, 9, 0, tzinfo=berlin))
    mail, call = campaign(
        db, contact, [email(), task(days=2)], start_at=friday, schedule={"timezone": "contact", "send_window": WEEKDAYS}
    )
    assert claim(db, friday, caps="email:1/day") == []
    steps = steps_by_id(db)
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=berlin)
    assert_waiting(steps[mail], monday, f"frequency cap email 1/day: deferred to the next day; {WEEKDAYS_NOTE}")
    # The call moved as much (2 days 23 hours) and back into the window: at least
    # its two days after the email, on a weekday in the window.
    assert steps[call].scheduled_at == datetime(2026, 3, 12, 9, 0, tzinfo=berlin)
    assert steps[call].status == "pending"


def test_steps_running_for_another_runner_count_against_the_cap(db: Database) -> None:
    contact = add_contact(db, NOW - timedelta(days=1), timezone="UTC")
    [first] = campaign(db, contact, [email()], start_at=NOW - timedelta(minutes=2), name="A")
    [second] = campaign(db, contact, [email()], start_at=NOW - timedelta(minutes=1), name="B")
    assert [job.step_id for job in claim(db, NOW, caps="email:1/day", limit=1, runner="r1")] == [first]
    assert claim(db, NOW, caps="email:1/day", runner="r2") == []
    steps = steps_by_id(db)
    assert steps[first].status == "running"
    assert_waiting(
        steps[second], datetime(2026, 3, 3, tzinfo=UTC), "frequency cap email 1/day: deferred to the next day"
    )


def test_an_exempt_campaign_is_not_capped_and_does_not_use_the_cap(db: Database) -> None:
    contact = add_contact(db, NOW - timedelta(days=1), timezone="UTC")
    delivered(db, contact, NOW - timedelta(hours=1))
    [receipt] = campaign(
        db, contact, [email()], start_at=NOW - timedelta(minutes=2), schedule={"frequency_cap_exempt": True}
    )
    [news] = campaign(db, contact, [email()], start_at=NOW - timedelta(minutes=1))
    assert [job.step_id for job in claim(db, NOW, caps="email:1/day")] == [receipt]
    assert steps_by_id(db)[news].schedule_note == "frequency cap email 1/day: deferred to the next day"


def test_on_postgresql_a_concurrent_claim_waits_for_the_contact_and_counts_its_steps(pg_db: Database) -> None:
    contact = add_contact(pg_db, NOW - timedelta(days=1), timezone="UTC")
    [first] = campaign(pg_db, contact, [email()], start_at=NOW - timedelta(minutes=2), name="A")
    [second] = campaign(pg_db, contact, [email()], start_at=NOW - timedelta(minutes=1), name="B")
    other: list[list[Job]] = []
    racer = threading.Thread(target=lambda: other.append(claim(pg_db, NOW, caps="email:1/day", runner="r2")))
    with pg_db.session() as s:
        jobs = claim_due_steps(
            s, "r1", NOW, limit=1, lease=timedelta(minutes=5), max_attempts=3, caps=parse_caps("email:1/day")
        )
        assert [job.step_id for job in jobs] == [first]
        racer.start()  # takes the other email, then waits for this claim's lock on the contact
        racer.join(timeout=1.0)
        assert racer.is_alive()
    racer.join(timeout=10)
    assert other == [[]]  # it counted the email this claim made running
    assert steps_by_id(pg_db)[second].schedule_note == "frequency cap email 1/day: deferred to the next day"


# --- send window and quiet hours -----------------------------------------------


def test_an_overdue_email_outside_the_window_waits_for_it(db: Database) -> None:
    contact = add_contact(db, NOW - timedelta(days=1), timezone="UTC")
    mail, call = campaign(
        db, contact, [email(), task(hours=3)], start_at=NOW + timedelta(hours=1), schedule={"send_window": WEEKDAYS}
    )
    evening = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # the runner was down all day
    assert claim(db, evening) == []
    steps = steps_by_id(db)
    tuesday = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert_waiting(steps[mail], tuesday, WEEKDAYS_NOTE)
    assert steps[call].scheduled_at == tuesday + timedelta(hours=3)  # the gap is kept
    assert [job.step_id for job in claim(db, tuesday)] == [mail]


def test_a_step_that_could_go_a_moment_ago_still_goes(db: Database) -> None:
    contact = add_contact(db, NOW - timedelta(days=1), timezone="UTC")
    closing = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    window = {"send_window": WEEKDAYS}
    [on_time] = campaign(db, contact, [email()], start_at=closing - timedelta(seconds=10), schedule=window, name="A")
    assert [job.step_id for job in claim(db, closing + timedelta(seconds=20))] == [on_time]  # a poll's delay
    [late] = campaign(db, contact, [email()], start_at=closing - timedelta(seconds=10), schedule=window, name="B")
    assert claim(db, closing + timedelta(seconds=90)) == []  # past the grace
    assert_waiting(steps_by_id(db)[late], datetime(2026, 3, 3, 9, 0, tzinfo=UTC), WEEKDAYS_NOTE)


def runner(db: Database, **settings: Any) -> Runner:
    return Runner(db, Settings(_env_file=None, **settings), batch_size=2)


def test_held_sms_do_not_end_the_tick_and_a_sent_email_is_counted(db: Database) -> None:
    late_evening = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    contact = add_contact(db, NOW, timezone="UTC")
    texts = [
        campaign(db, contact, [sms()], start_at=late_evening - timedelta(minutes=10), name=f"T{i}")[0] for i in range(3)
    ]
    [mail] = campaign(db, contact, [email()], start_at=late_evening - timedelta(minutes=5), name="M")
    r = runner(db, sms_quiet_hours="21:00-08:00")
    summary = r.tick(late_evening)  # batches of 2: the email is in the second
    r.close()
    assert (summary.executed, summary.held) == (1, 3)
    steps = steps_by_id(db)
    assert steps[mail].status == "sent"
    for step_id in texts:
        assert_waiting(steps[step_id], datetime(2026, 3, 3, 8, 0, tzinfo=UTC), "SMS quiet hours 21:00–08:00")
    with db.read_session() as s:
        rows = [(d.contact_id, d.channel, d.sent_at, d.step_id) for d in s.scalars(select(ContactDelivery))]
    assert rows == [(contact, "email", late_evening, mail)]


def test_a_late_step_moves_the_next_into_the_window(db: Database) -> None:
    contact = add_contact(db, NOW - timedelta(days=1), timezone="UTC")
    first, second = campaign(
        db, contact, [task("a"), task("b", hours=2)], start_at=NOW, schedule={"send_window": WEEKDAYS}
    )
    r = runner(db)
    r.tick(datetime(2026, 3, 2, 16, 0, tzinfo=UTC))  # seven hours late
    r.close()
    steps = steps_by_id(db)
    assert steps[first].status == "done"
    # 11:00 + 7 hours is 18:00, after the window: the next morning instead.
    assert steps[second].scheduled_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert steps[second].schedule_note == WEEKDAYS_NOTE


# --- real runner processes --------------------------------------------------------


def unhurried_zone(now: datetime) -> ZoneInfo:
    """A zone where `now` is not within minutes of midnight, so that the day a
    test counts in does not change while it runs."""
    for name in ("America/New_York", "Asia/Tokyo"):
        local = now.astimezone(ZoneInfo(name)).time()
        if time(0, 10) <= local <= time(23, 50):
            return ZoneInfo(name)
    raise AssertionError("unreachable: the two zones are 13 or 14 hours apart")


@pytest.mark.slow
def test_two_runners_send_exactly_the_cap_and_defer_the_rest(db: Database, tmp_path: Path) -> None:
    now = utcnow()
    zone = unhurried_zone(now)
    due = now - timedelta(seconds=1)
    capped: dict[int, list[int]] = {}  # by contact: three campaigns, each with an email due now
    exempt: list[int] = []
    for n in range(6):
        contact = add_contact(db, now - timedelta(days=1), timezone=str(zone))
        capped[contact] = [campaign(db, contact, [email()], start_at=due, name=f"C{n}.{i}")[0] for i in range(3)]
        exempt += campaign(db, contact, [email()], start_at=due, schedule={"frequency_cap_exempt": True})
    env = {"AUTOMATIONS_FREQUENCY_CAP": "email:2/day"}
    # Batches of one step: both runners take emails of the same contact at once.
    runners = [
        start_runner(db.url, tmp_path, f"r{i}", "--interval", "0.2", "--batch-size", "1", env=env) for i in range(2)
    ]

    def settled() -> bool:
        return [s.status for s in steps_by_id(db).values()].count("sent") >= 2 * len(capped) + len(exempt)

    try:
        wait_until(settled, 60, "the runners to send the cap and defer the rest")
        sleep(1.0)  # a few more ticks, in which nothing else may go out
    finally:
        codes = stop_all(runners)
    assert codes == [0, 0]
    steps = steps_by_id(db)
    assert {steps[i].status for i in exempt} == {"sent"}
    tomorrow = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(0), tzinfo=zone)
    for ids in capped.values():
        assert sorted(steps[i].status for i in ids) == ["pending", "sent", "sent"]
        [held] = [steps[i] for i in ids if steps[i].status == "pending"]
        assert_waiting(held, tomorrow.astimezone(UTC), "frequency cap email 2/day: deferred to the next day")
    assert not any(s.status in ("failed", "running") for s in steps.values())
    assert len(list((tmp_path / "box" / "email").glob("*.eml"))) == 3 * len(capped)
    with db.read_session() as s:
        counted = sorted(s.scalars(select(ContactDelivery.step_id)))
    assert counted == sorted(i for i, step in steps.items() if step.status == "sent")


@pytest.mark.slow
def test_quiet_hours_hold_an_sms_while_an_email_goes(db: Database, tmp_path: Path) -> None:
    now = utcnow()
    tokyo = ZoneInfo("Asia/Tokyo")  # no DST: the quiet hours are plain local times
    local = now.astimezone(tokyo)
    start = (local - timedelta(hours=1)).replace(second=0, microsecond=0)
    end = (local + timedelta(hours=2)).replace(second=0, microsecond=0)
    quiet = f"{start:%H:%M}-{end:%H:%M}"  # now is inside, whatever the hour
    contact = add_contact(db, now - timedelta(days=1), timezone="Asia/Tokyo")
    text, call = campaign(db, contact, [sms(), task(hours=1)], start_at=now - timedelta(seconds=1), name="Text")
    [mail] = campaign(db, contact, [email()], start_at=now - timedelta(seconds=1), name="Mail")
    runners = [start_runner(db.url, tmp_path, "r0", "--interval", "0.2", env={"AUTOMATIONS_SMS_QUIET_HOURS": quiet})]
    try:
        wait_until(
            lambda: steps_by_id(db)[mail].status == "sent" and steps_by_id(db)[text].schedule_note,
            60,
            "the runner to send the email and hold the SMS",
        )
    finally:
        codes = stop_all(runners)
    assert codes == [0]
    steps = steps_by_id(db)
    assert_waiting(steps[text], end.astimezone(UTC), f"SMS quiet hours {start:%H:%M}–{end:%H:%M}")
    assert steps[call].scheduled_at == end.astimezone(UTC) + timedelta(hours=1)  # the gap is kept
    assert not (tmp_path / "box" / "sms.jsonl").exists()
    assert len(list((tmp_path / "box" / "email").glob("*.eml"))) == 1
