"""Channels: how a step reaches a person or a system (email, SMS, task, webhook).

Each channel is one small class with `send_many(jobs) -> list[Delivery]`
(see `base.Channel`); `build_channels` picks the configured provider of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


def build_channels(settings: Settings, webhook_secret: str) -> ChannelSet:
    """The configured channels: SMTP or outbox, SMS API or outbox, tasks, webhooks."""
    return ChannelSet(
        email=email_channel(settings),
        sms=sms_channel(settings),
        task=TaskChannel(),
        webhook=WebhookChannel(settings, webhook_secret),
    )


class DeliveryFailed(DomainError):
    """A test message could not be delivered; the message says why."""


def send_test_message(settings: Settings, db: Database, channel: Literal["email", "sms"], to: str) -> str:
    """Send a test email or SMS to `to` through the configured provider.

    Returns what happened ("sent via SMTP", "written to data/outbox/..."); raises
    `ValidationError` for a bad address and `DeliveryFailed` when delivery fails.
    """
    if channel not in ("email", "sms"):
        raise ValidationError.single("channel", "must be email or sms")
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


__all__ = [
    "Channel",
    "ChannelSet",
    "Delivery",
    "DeliveryFailed",
    "Job",
    "PermanentError",
    "TransientError",
    "build_channels",
    "get_webhook_secret",
    "send_test_message",
    "webhook_secret_is_set",
]
