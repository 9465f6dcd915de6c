"""Channels: how a step reaches a person or a system (email, SMS, task, webhook).

Each channel is one small class with `send_many(jobs) -> list[Delivery]`
(see `base.Channel`); `build_channels` picks the configured provider of each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from automations.channels.base import (
    Channel,
    Delivery,
    Job,
    PermanentError,
    TransientError,
)
from automations.channels.email import email_channel
from automations.channels.sms import sms_channel
from automations.channels.task import TaskChannel
from automations.channels.webhook import (
    WebhookChannel,
    get_webhook_secret,
    webhook_secret_is_set,
)
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.errors import DomainError, ValidationError
from automations.domain.netguard import BlockedTarget, check_url_static, check_url_syntax
from automations.domain.timeutil import utcnow


@dataclass
class ChannelSet:
    """One channel per message type, built once per runner."""

    email: Channel
    sms: Channel
    task: Channel
    webhook: Channel

    def for_type(self, message_type: str) -> Channel:
        return getattr(self, message_type)

    def close(self) -> None:
        for channel in (self.email, self.sms, self.task, self.webhook):
            channel.close()


def build_channels(
    settings: Settings, webhook_secret: str, *, tracking_key: str | Callable[[], str] | None = None
) -> ChannelSet:
    """The configured channels: SMTP or outbox, SMS API or outbox, tasks, webhooks.
    `tracking_key` signs the tracked links of emails (read when first needed)."""
    return ChannelSet(
        email=email_channel(settings, tracking_key=tracking_key),
        sms=sms_channel(settings),
        task=TaskChannel(),
        webhook=WebhookChannel(settings, webhook_secret),
    )


class DeliveryFailed(DomainError):
    """A test message could not be delivered; the message says why."""


TEST_CHANNELS = ("email", "sms", "webhook")
TEST_EVENT = "automation.test"


def send_test_message(settings: Settings, db: Database, channel: Literal["email", "sms", "webhook"], to: str) -> str:
    """Send a test email or SMS to `to`, or POST a signed test webhook to the URL `to`,
    through the configured provider, as the runner would.

    A test webhook is signed with the runner's secret and checked by the same
    private-network guard (`AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE`); its event is
    `automation.test`, so that a receiver can tell it from a step.

    Returns what happened ("sent via SMTP", "written to data/outbox/..."); raises
    `ValidationError` for a bad address or a refused URL and `DeliveryFailed` when
    delivery fails. No message says more of a URL than its host (its path or query
    may hold a token).
    """
    if channel not in TEST_CHANNELS:
        raise ValidationError.single("channel", "must be email, sms or webhook")
    to = to.strip()
    if not to:
        what = {"email": "an email address", "sms": "a phone number", "webhook": "a URL"}[channel]
        raise ValidationError.single("to", f"enter {what} to send the test to")
    now = utcnow()
    job = Job(
        step_id=0,
        token="",
        attempt_no=1,
        campaign_id=0,
        campaign_name="Test message",
        contact_id=0,
        position=0,
        name="Test message",
        message_type=channel,
        scheduled_at=now,
        due_at=now,
        idempotency_key=f"test-{now.strftime('%Y%m%d%H%M%S%f')}",
        contact={},
        email=to if channel == "email" else None,
        phone=to if channel == "sms" else None,
        subject="Automations test message",
        body="This is a test message from Automations: the channel is configured correctly.",
    )
    if channel == "webhook":
        return _send_test_webhook(settings, db, job, to)
    built = email_channel(settings) if channel == "email" else sms_channel(settings)
    try:
        delivery = built.send_many([job])[0]
    finally:
        built.close()
    if delivery.outcome == "sent":
        return f"{delivery.detail} to {to}"
    if "address" in delivery.detail or "phone number" in delivery.detail:
        raise ValidationError.single("to", delivery.detail)
    raise DeliveryFailed(delivery.detail)


def _send_test_webhook(settings: Settings, db: Database, job: Job, url: str) -> str:
    try:
        _, host, _ = check_url_syntax(url)
        check_url_static(url, settings.webhook_allow_private)
    except BlockedTarget as exc:
        raise ValidationError.single("to", _refusal(str(exc), url)) from None
    job.webhook_url = url
    job.webhook_event = TEST_EVENT
    job.webhook_payload = {"test": True, "message": job.body}
    with db.session() as session:
        secret = get_webhook_secret(session, settings)
    built = WebhookChannel(settings, secret)
    try:
        delivery = built.send(job)
    finally:
        built.close()
    detail = _without_url(delivery.detail, url)
    if delivery.outcome == "sent":
        return f"{detail} at {host}"
    if detail.startswith("webhook target refused:"):
        raise ValidationError.single("to", _refusal(detail.removeprefix("webhook target refused:").strip(), url))
    raise DeliveryFailed(detail)


def _refusal(reason: str, url: str) -> str:
    """The guard's reason for refusing `url`, as a sentence for the user."""
    reason = _without_url(reason, url)
    if reason.startswith("not a valid URL"):
        return "this is not a valid URL"  # urllib's own words may quote the URL
    if reason.startswith(("must", "has")):
        return f"the URL {reason}"
    subject = f"it {reason}" if reason.startswith("targets") else reason
    return (
        f"this URL is refused: {subject}. As for the runner, webhooks go only to public "
        "addresses unless AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE=1 is set"
    )


def _without_url(detail: str, url: str) -> str:
    """`detail` without the URL's path and query, which may hold a token."""
    parts = urlsplit(url)
    for secret_part in (url, parts.path + ("?" + parts.query if parts.query else ""), parts.query):
        if len(secret_part) > 1:
            detail = detail.replace(secret_part, "…")
    return detail


__all__ = [
    "Channel",
    "ChannelSet",
    "Delivery",
    "DeliveryFailed",
    "Job",
    "PermanentError",
    "TEST_CHANNELS",
    "TransientError",
    "build_channels",
    "get_webhook_secret",
    "send_test_message",
    "webhook_secret_is_set",
]
