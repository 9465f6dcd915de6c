"""Time-aware planning: a step's time in the recipient's clock, inside a send
window, off holidays, out of SMS quiet hours.

`Planner.next_time` turns "the previous step's planned time + a delay" into the
step's UTC time and the reason it moved, if it did. Wall-clock arithmetic is
done on local times ("3 days later at the same time" stays at the same local
time across a DST change) and converted once at the end: a local time that does
not exist (the spring-forward gap) lands after the gap, an ambiguous one (the
fall-back hour) takes its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holiday_data

from automations.domain.timeutil import UTC, as_utc

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A window of at least a minute on at least one day always opens within a year
# and a half, even around long holiday runs; the search never goes further.
SEARCH_DAYS = 550


@dataclass(frozen=True)
class SendWindow:
    """Days of the week (0 is Monday) and a local start and end time (start < end)."""

    days: frozenset[int]
    start: time
    end: time

    def describe(self) -> str:
        days = ", ".join(DAY_NAMES[d].capitalize() for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which no SMS goes out; may cross midnight (21:00–08:00)."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@lru_cache(maxsize=64)
def holiday_calendar(code: str) -> Any:
    """The public holidays of `code`, a country with an optional subdivision
    ("US", "US-NY", "DE-BY"), from the `holidays` package. Raises KeyError for an
    unknown country or subdivision."""
    country, _, subdivision = code.partition("-")
    try:
        return holiday_data.country_holidays(country.upper(), subdiv=subdivision.upper() or None)
    except NotImplementedError as exc:
        raise KeyError(code) from exc


@dataclass(frozen=True)
class Planned:
    at: datetime  # UTC
    note: str | None  # why the time moved from the plain delay (None: it did not)


class Planner:
    """Plans steps in one clock (`zone`) with an optional window, holiday calendar
    and, for SMS steps, quiet hours."""

    def __init__(
        self,
        zone: ZoneInfo,
        window: SendWindow | None = None,
        holidays: str | None = None,
        quiet_hours: QuietHours | None = None,
    ) -> None:
        self.zone = zone
        self.window = window
        self.holidays = holiday_calendar(holidays) if holidays else None
        self.quiet_hours = quiet_hours

    # --- local wall-clock times ----------------------------------------------------

    def local(self, moment: datetime) -> datetime:
        """`moment` (aware) as a naive local wall-clock time."""
        return as_utc(moment).astimezone(self.zone).replace(tzinfo=None)

    def utc(self, wall: datetime) -> datetime:
        """A naive local wall-clock time in UTC: a time in a spring-forward gap
        lands after it, an ambiguous one is its first occurrence."""
        return wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def holiday(self, day: date) -> str | None:
        if self.holidays is None:
            return None
        name = self.holidays.get(day)
        return str(name) if name else None

    def open_day(self, day: date) -> bool:
        """A business day: a day the window is open on (Monday to Friday without a
        window) that is not a holiday."""
        in_window = day.weekday() in self.window.days if self.window is not None else day.weekday() < 5
        return in_window and self.holiday(day) is None

    # --- planning ------------------------------------------------------------------

    def next_time(
        self,
        previous: datetime,
        delay_days: int = 0,
        delay_hours: int = 0,
        *,
        business_days: bool = False,
        send_at: time | None = None,
        sms: bool = False,
    ) -> Planned:
        """The time of a step `delay_days` days and `delay_hours` hours after
        `previous` (UTC), then at `send_at` local time if given, moved into the
        window, off holidays and (`sms`) out of quiet hours."""
        wall = self.local(previous)
        if business_days and delay_days:
            day = wall.date()
            counted = 0
            while counted < delay_days:
                day += timedelta(days=1)
                if self.open_day(day):
                    counted += 1
            wall = datetime.combine(day, wall.time())
        else:
            wall += timedelta(days=delay_days)  # calendar days: the same wall-clock time
        if delay_hours:
            wall = self.local(self.utc(wall) + timedelta(hours=delay_hours))  # elapsed hours
        if send_at is not None:
            target = datetime.combine(wall.date(), send_at)
            wall = target if target >= wall else target + timedelta(days=1)
        planned = self.local(self.utc(wall))  # a time in a DST gap is after it
        fitted, reasons = self._fit(planned, sms)
        note = "; ".join(reasons) if reasons else None
        return Planned(self.utc(fitted), note)

    def fit(self, moment: datetime, *, sms: bool = False) -> Planned:
        """The first time at or after `moment` (UTC) a step may go out."""
        fitted, reasons = self._fit(self.local(moment), sms)
        at = self.utc(fitted)
        return Planned(max(at, as_utc(moment)), "; ".join(reasons) if reasons else None)

    def _fit(self, wall: datetime, sms: bool) -> tuple[datetime, list[str]]:
        """The first local time at or after `wall` that is inside the window, on an
        open day and (for SMS) outside quiet hours, with the reasons it moved."""
        reasons: list[str] = []
        start = wall
        # Window and quiet hours agree within a few moves when the window has any
        # time outside quiet hours; when it has none, quiet hours win: an SMS
        # never goes out inside them, whatever the window says.
        for window in (self.window, None):
            wall = start
            for _ in range(8):
                moved = self._into_window(wall, reasons, window)
                quiet = self.quiet_hours
                if sms and quiet is not None and quiet.contains(moved.time()):
                    end = datetime.combine(moved.date(), quiet.end)
                    if end <= moved:
                        end += timedelta(days=1)
                    _note(reasons, f"SMS quiet hours {quiet.start:%H:%M}–{quiet.end:%H:%M}")
                    wall = end
                    continue
                if window is None and self.window is not None:
                    _note(reasons, "the send window lies inside SMS quiet hours: sent when they end")
                return moved, reasons
        raise ValueError("holidays and quiet hours leave no time to send")

    def _into_window(self, wall: datetime, reasons: list[str], window: SendWindow | None) -> datetime:
        for _ in range(SEARCH_DAYS):
            day = wall.date()
            holiday = self.holiday(day)
            if holiday is not None:
                _note(reasons, f"holiday ({holiday})")
            elif window is None:
                return wall
            elif day.weekday() in window.days and wall.time() < window.end:
                if wall.time() >= window.start:
                    return wall
                _note(reasons, f"outside the send window ({window.describe()})")
                return datetime.combine(day, window.start)
            else:
                _note(reasons, f"outside the send window ({window.describe()})")
            wall = datetime.combine(day + timedelta(days=1), window.start if window else time(0))
        raise ValueError("the send window never opens")


def _note(reasons: list[str], reason: str) -> None:
    if reason not in reasons:
        reasons.append(reason)


@dataclass(frozen=True)
class Cap:
    """At most `limit` messages of `channel` per contact per calendar `period`
    ("day" or ISO "week") in the contact's time zone."""

    channel: str
    limit: int
    period: str

    def describe(self) -> str:
        return f"{self.channel} {self.limit}/{self.period}"


CAP_CHANNELS = ("email", "sms")
CAP_PERIODS = ("day", "week")


def parse_caps(text: str) -> tuple[Cap, ...]:
    """ "email:3/day,sms:1/day,email:10/week" as caps; "" or "off": none.
    ValueError naming the part that is wrong."""
    text = text.strip()
    if text.lower() in ("", "off", "none"):
        return ()
    caps: list[Cap] = []
    for part in text.split(","):
        part = part.strip()
        channel, _, rest = part.partition(":")
        count, _, period = rest.partition("/")
        channel, period = channel.strip().lower(), period.strip().lower()
        if channel not in CAP_CHANNELS or period not in CAP_PERIODS or not count.strip().isdigit():
            raise ValueError(f"{part!r} is not a cap like email:3/day or sms:1/week (channels email, sms)")
        if int(count) < 1:
            raise ValueError(f"{part!r}: a cap allows at least 1 message")
        caps.append(Cap(channel, int(count), period))
    return tuple(caps)


def parse_quiet_hours(text: str) -> QuietHours | None:
    """ "21:00-08:00" as quiet hours; "" or "off": none. ValueError otherwise."""
    text = text.strip()
    if text.lower() in ("", "off", "none"):
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not hours like 21:00-08:00")
    quiet = QuietHours(parse_hhmm(start.strip()), parse_hhmm(end.strip()))
    if quiet.start == quiet.end:
        raise ValueError(f"{text!r}: quiet hours start and end at the same time")
    return quiet


def parse_hhmm(text: str) -> time:
    """ "09:30" as a time; ValueError for anything else ("25:00", "9h")."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(minutes) != 2 or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(f"{text!r} is not a time as HH:MM")
    return time(int(hours), int(minutes))


__all__ = [
    "DAY_NAMES",
    "Cap",
    "Planned",
    "Planner",
    "QuietHours",
    "SendWindow",
    "holiday_calendar",
    "parse_caps",
    "parse_hhmm",
    "parse_quiet_hours",
]
