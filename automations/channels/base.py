"""What every channel shares: the job a runner hands it, the delivery it returns,
and the two kinds of failure (transient: try again later; permanent: give up)."""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from automations.domain.timeutil import UTC


@dataclass
class Job:
    """One claimed attempt at one step, with everything needed to execute it
    without going back to the database (rendered content included)."""

    step_id: int
    token: str
    attempt_no: int
    campaign_id: int
    campaign_name: str
    contact_id: int
    position: int
    name: str
    message_type: str
    scheduled_at: datetime
    due_at: datetime
    idempotency_key: str
    contact: dict[str, Any]
    email: str | None = None
    phone: str | None = None
    email_opt_out: bool = False
    sms_opt_out: bool = False
    email_bouncing: bool = False  # a hard bounce: no more email until the address is edited
    track: bool = True  # the campaign tracks opens and clicks
    subject_source: str = ""
    body_source: str = ""
    webhook_url: str | None = None
    webhook_payload: dict[str, Any] | None = None
    webhook_event: str = "automation.step"  # "automation.test" for a test message
    # Filled in by the runner before the channel sees the job.
    subject: str = ""
    body: str = ""


# Outcomes of a delivery (same words as `AttemptOutcome`).
SENT, DONE, RETRY, FAILED, SKIPPED = "sent", "done", "retry", "failed", "skipped"


@dataclass
class Delivery:
    """What happened to one job: the outcome, a short detail for the attempt log
    (never the message body or a secret), the channel's result, and for a retry
    the delay the receiver asked for (`Retry-After`)."""

    outcome: str
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None


class TransientError(Exception):
    """Worth another attempt later (4xx SMTP reply, timeout, HTTP 429/5xx...)."""

    def __init__(self, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Another attempt would fail the same way (5xx SMTP reply, HTTP 4xx, invalid address)."""


class Channel(Protocol):
    """A way of delivering steps. A new provider is one new class with `send_many`."""

    name: str

    def send_many(self, jobs: Sequence[Job]) -> list[Delivery]:
        """Deliver `jobs` (one connection for all of them where the protocol allows),
        returning one `Delivery` per job, in order. Never raises for one job's failure."""
        ...

    def close(self) -> None: ...


def delivery_from_error(exc: Exception) -> Delivery:
    if isinstance(exc, TransientError):
        return Delivery(RETRY, str(exc), retry_after=exc.retry_after)
    if isinstance(exc, PermanentError):
        return Delivery(FAILED, str(exc))
    return Delivery(RETRY, f"{type(exc).__name__}: {exc}")


HTTP_TRANSIENT = frozenset({408, 425, 429})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


def classify_http(status: int, retry_after: str | None, what: str) -> Delivery | None:
    """None for a 2xx answer, otherwise the failure it means."""
    if 200 <= status < 300:
        return None
    if status in HTTP_TRANSIENT or status >= 500:
        return Delivery(
            RETRY, f"{what} answered HTTP {status}", {"http_status": status}, retry_after=parse_retry_after(retry_after)
        )
    return Delivery(FAILED, f"{what} answered HTTP {status}", {"http_status": status})
