"""Planning in the recipient's clock: named cases, and properties over many time
zones, windows and delays (Hypothesis)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automations.domain.schedule import Planner, QuietHours, SendWindow, parse_hhmm
from automations.domain.timeutil import UTC

NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_9_TO_5 = SendWindow(frozenset(range(5)), time(9), time(17))
ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Australia/Adelaide",
    "America/Sao_Paulo",
    "Pacific/Auckland",
    "Asia/Kathmandu",
]


def _ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK).astimezone(UTC)


def test_a_friday_afternoon_start_with_two_hours_moves_to_monday_morning() -> None:
    planner = Planner(NEW_YORK, WEEKDAYS_9_TO_5, "US")
    planned = planner.next_time(_ny(2026, 12, 4, 16, 30), delay_hours=2)  # Friday 16:30
    assert planned.at == _ny(2026, 12, 7, 9, 0)  # Monday 09:00
    assert planned.note == "outside the send window (Mon, Tue, Wed, Thu, Fri 09:00–17:00)"


def test_two_business_days_from_the_wednesday_before_thanksgiving() -> None:
    planner = Planner(NEW_YORK, WEEKDAYS_9_TO_5, "US")
    planned = planner.next_time(_ny(2026, 11, 25, 10, 0), delay_days=2, business_days=True)
    # Thursday is Thanksgiving: Friday is the first business day, Monday the second.
    assert planned.at == _ny(2026, 11, 30, 10, 0)
    assert planned.note is None


def test_a_plain_delay_landing_on_a_holiday_moves_and_says_which() -> None:
    planner = Planner(NEW_YORK, WEEKDAYS_9_TO_5, "US")
    planned = planner.next_time(_ny(2026, 11, 25, 10, 0), delay_days=1)
    assert planned.at == _ny(2026, 11, 27, 9, 0)
    assert planned.note is not None and "Thanksgiving" in planned.note


def test_send_at_in_the_spring_forward_gap_lands_after_it() -> None:
    planner = Planner(NEW_YORK)
    # 14 March 2027: clocks go from 02:00 to 03:00 in New York.
    planned = planner.next_time(_ny(2027, 3, 13, 1, 0), delay_days=1, send_at=time(2, 30))
    assert planned.at.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2027, 3, 14, 3, 30)


def test_an_ambiguous_local_time_takes_its_first_occurrence() -> None:
    planner = Planner(NEW_YORK)
    # 7 November 2027: 01:30 happens twice; the first is EDT (UTC-4).
    planned = planner.next_time(_ny(2027, 11, 6, 1, 0), delay_days=1, send_at=time(1, 30))
    assert planned.at == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)


def test_days_keep_the_wall_clock_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    planner = Planner(berlin)
    start = datetime(2027, 3, 26, 10, 0, tzinfo=berlin)  # DST starts on 28 March 2027
    planned = planner.next_time(start, delay_days=3)
    assert planned.at.astimezone(berlin).replace(tzinfo=None) == datetime(2027, 3, 29, 10, 0)


def test_an_sms_waits_for_the_end_of_quiet_hours() -> None:
    planner = Planner(NEW_YORK, quiet_hours=QuietHours(time(21), time(8)))
    planned = planner.next_time(_ny(2026, 12, 2, 20, 0), delay_hours=2, sms=True)
    assert planned.at == _ny(2026, 12, 3, 8, 0)
    assert planned.note == "SMS quiet hours 21:00–08:00"
    # An email at the same time goes out at 22:00.
    assert planner.next_time(_ny(2026, 12, 2, 20, 0), delay_hours=2).at == _ny(2026, 12, 2, 22, 0)


@pytest.mark.parametrize("text", ["25:00", "9h", "12:5", "", "ab:cd"])
def test_a_time_that_is_not_hh_mm_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(text)


windows = st.builds(
    lambda days, start, length: SendWindow(frozenset(days), time(start // 60, start % 60), _end(start, length)),
    st.sets(st.integers(0, 6), min_size=1),
    st.integers(0, 22 * 60),
    st.integers(30, 12 * 60),
)


def _end(start: int, length: int) -> time:
    end = min(start + length, 23 * 60 + 59)
    return time(end // 60, end % 60)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    window=windows,
    holidays=st.sampled_from([None, "US", "DE-BY", "AU-NSW", "IN", "JP"]),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
    delay_days=st.integers(0, 40),
    delay_hours=st.integers(0, 72),
    business_days=st.booleans(),
    sms=st.booleans(),
)
def test_no_planned_time_falls_outside_its_window_on_a_holiday_or_in_quiet_hours(
    zone: str,
    window: SendWindow,
    holidays: str | None,
    start: datetime,
    delay_days: int,
    delay_hours: int,
    business_days: bool,
    sms: bool,
) -> None:
    quiet = QuietHours(time(21), time(8))
    planner = Planner(ZoneInfo(zone), window, holidays, quiet)
    previous = start.replace(tzinfo=UTC)
    planned = planner.next_time(previous, delay_days, delay_hours, business_days=business_days, sms=sms)
    local = planned.at.astimezone(ZoneInfo(zone))
    wall = local.time().replace(tzinfo=None)
    assert planner.holiday(local.date()) is None
    if sms:
        assert not quiet.contains(wall)
    # Inside the window, unless (for an SMS) the window lies wholly in quiet hours.
    window_in_quiet = (
        quiet.contains(window.start)
        and quiet.contains((datetime.combine(date.min, window.end) - timedelta(minutes=1)).time())
        and not (window.start < quiet.end < window.end)
    )
    if not (sms and window_in_quiet):
        assert local.weekday() in window.days
        assert window.start <= wall < window.end
    # Never earlier than the plain delay.
    assert planned.at >= previous + timedelta(hours=delay_hours) + timedelta(days=delay_days) - timedelta(hours=3)
    assert isinstance(local.date(), date)


# The 2027 DST changes: US (14 March, 7 November), EU (28 March, 31 October),
# Australia (4 April, 3 October); starts drawn around them.
DST_2027 = [
    date(2027, 3, 14),
    date(2027, 11, 7),
    date(2027, 3, 28),
    date(2027, 10, 31),
    date(2027, 4, 4),
    date(2027, 10, 3),
]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    change=st.sampled_from(DST_2027),
    offset_hours=st.integers(-5 * 24, 2 * 24),
    delay_days=st.integers(1, 10),
)
def test_days_keep_the_local_wall_clock_across_the_2027_dst_changes(
    zone: str, change: date, offset_hours: int, delay_days: int
) -> None:
    tz = ZoneInfo(zone)
    start = (datetime.combine(change, time(12)) + timedelta(hours=offset_hours)).replace(tzinfo=tz).astimezone(UTC)
    planned = Planner(tz).next_time(start, delay_days)
    wall = start.astimezone(tz).replace(tzinfo=None) + timedelta(days=delay_days)
    exists = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
    got = planned.at.astimezone(tz).replace(tzinfo=None)
    if exists:
        assert got == wall  # the same local time, whatever the offset did meanwhile
    else:
        assert wall < got <= wall + timedelta(hours=1)  # a time in the spring-forward gap moves past it
