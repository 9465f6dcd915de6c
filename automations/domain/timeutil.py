"""Time helpers: everything is stored in UTC and shown in the configured timezone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

UTC = UTC


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A naive datetime is taken to be UTC already; an aware one is converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_local(value: datetime | None, tz: tzinfo) -> datetime | None:
    return None if value is None else as_utc(value).astimezone(tz)


def format_local(value: datetime | None, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    local = to_local(value, tz)
    return "" if local is None else local.strftime(fmt)


def step_delay(days: int, hours: int) -> timedelta:
    return timedelta(days=days, hours=hours)


def humanize_delay(days: int, hours: int) -> str:
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    return " ".join(parts) or "immediately"
