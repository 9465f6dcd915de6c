"""Email: SMTP through the standard library, or `.eml` files in the outbox.

One SMTP connection serves a whole chunk of a batch (reconnecting after a dropped
one) and goes back to a small pool for the next chunk or batch, so a drain of
thousands of messages opens about as many connections as there are delivery
threads. The `Message-ID` is derived from the step's idempotency key, so a repeat
after a crash carries the same id and the receiving side can drop it.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import threading
import time
from collections.abc import Sequence
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from automations.channels.base import (
    FAILED,
    RETRY,
    SENT,
    Delivery,
    Job,
    PermanentError,
    TransientError,
    delivery_from_error,
)
from automations.domain.config import Settings

log = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 30
# A pooled connection idle for longer is closed rather than reused (servers drop
# idle clients after a few minutes; RFC 5321 asks them to wait at least five).
SMTP_IDLE_REUSE_S = 60


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, each header's class made once: the stock one
    builds a new class on every lookup, a large share of composing a message."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# The standard policy (RFC-compliant headers, UTF-8 where needed), faster headers.
POLICY = email_policy.default.clone(header_factory=_HeaderClasses())


def sender_domain(sender: str) -> str:
    return sender.rsplit("@", 1)[-1].strip("<> ") or "localhost"


def build_message(settings: Settings, job: Job) -> EmailMessage:
    """The email for `job`: personalised subject and body, idempotent Message-ID,
    and a `List-Unsubscribe` header pointing back at the sender."""
    if not job.email:
        raise PermanentError("contact has no email address")
    problem = _address_problem(job.email)
    if problem is not None:
        raise PermanentError(f"invalid email address: {problem}")
    message = EmailMessage(policy=POLICY)
    message["From"] = settings.email_from
    message["To"] = job.email
    message["Subject"] = job.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{job.idempotency_key}@{sender_domain(settings.email_from)}>"
    message["List-Unsubscribe"] = f"<mailto:{settings.email_from}?subject=unsubscribe>"
    message["X-Automations-Campaign"] = str(job.campaign_id)
    message.set_content(job.body or "")
    return message


@lru_cache(maxsize=8192)
def _address_problem(address: str) -> str | None:
    """Why `address` cannot be used, or None (remembered per address: a campaign's
    every step goes to the same few addresses)."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


class OutboxEmailChannel:
    """Writes each message to `<outbox>/email/<idempotency key>.eml` (a repeat
    overwrites the same file, so the outbox never holds a message twice)."""

    name = "email"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.folder = Path(settings.outbox_dir) / "email"

    def send_many(self, jobs: Sequence[Job]) -> list[Delivery]:
        self.folder.mkdir(parents=True, exist_ok=True)
        deliveries = []
        for job in jobs:
            try:
                message = build_message(self.settings, job)
                path = self.folder / f"{job.idempotency_key}.eml"
                temporary = path.with_suffix(".tmp")
                temporary.write_bytes(bytes(message))
                os.replace(temporary, path)
                deliveries.append(
                    Delivery(SENT, f"written to {path}", {"message_id": message["Message-ID"], "path": str(path)})
                )
            except Exception as exc:  # one bad message must not stop the batch
                deliveries.append(delivery_from_error(exc))
        return deliveries

    def close(self) -> None:
        pass


def _smtp_failure(exc: Exception) -> Delivery:
    """SMTP 4xx and connection trouble are transient; 5xx is permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return _by_code(int(code), reply)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _by_code(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, (smtplib.SMTPException, OSError)):
        return Delivery(RETRY, f"SMTP connection problem: {type(exc).__name__}: {exc}")
    return delivery_from_error(exc)


def _by_code(code: int, reply: bytes | str) -> Delivery:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    detail = f"SMTP {code} {text}".strip()[:500]
    if 400 <= code < 500:
        return Delivery(RETRY, detail, {"smtp_code": code})
    return Delivery(FAILED, detail, {"smtp_code": code})


class SmtpEmailChannel:
    """Delivers over SMTP (STARTTLS or SSL and login when configured)."""

    name = "email"
    io_bound = True
    per_connection = True  # one connection per worker thread, reused for its chunk

    def __init__(self, settings: Settings):
        self.settings = settings
        self._idle: list[tuple[smtplib.SMTP, float]] = []  # (connection, idle since)
        self._lock = threading.Lock()

    def connect(self) -> smtplib.SMTP:
        s = self.settings
        host = s.smtp_host or "localhost"
        if s.smtp_ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host,
                s.smtp_port or 465,
                timeout=SMTP_TIMEOUT_S,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(host, s.smtp_port or 25, timeout=SMTP_TIMEOUT_S)
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            smtp.login(s.smtp_username, password)
        return smtp

    def _take(self) -> smtplib.SMTP | None:
        """An idle pooled connection that is recent enough, or None."""
        now, stale = time.monotonic(), []
        found = None
        with self._lock:
            while self._idle:
                smtp, since = self._idle.pop()
                if now - since <= SMTP_IDLE_REUSE_S:
                    found = smtp
                    break
                stale.append(smtp)
        for smtp in stale:
            _drop(smtp, quit=True)
        return found

    def _give_back(self, smtp: smtplib.SMTP) -> None:
        with self._lock:
            self._idle.append((smtp, time.monotonic()))

    def send_many(self, jobs: Sequence[Job]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        smtp = self._take()
        # A pooled connection may have been closed by the server while idle: the
        # first message then goes over a new connection instead of failing.
        pooled = smtp is not None
        finished = False
        try:
            for job in jobs:
                try:
                    message = build_message(self.settings, job)
                except Exception as exc:
                    deliveries.append(delivery_from_error(exc))
                    continue
                try:
                    if smtp is None:
                        smtp = self.connect()
                    try:
                        smtp.send_message(message)
                    except (smtplib.SMTPServerDisconnected, ConnectionError):
                        if not pooled:
                            raise
                        _drop(smtp)
                        smtp = None
                        smtp = self.connect()
                        smtp.send_message(message)
                    finally:
                        pooled = False
                    deliveries.append(Delivery(SENT, "sent via SMTP", {"message_id": message["Message-ID"]}))
                except smtplib.SMTPAuthenticationError as exc:
                    deliveries.append(Delivery(RETRY, f"SMTP login refused ({exc.smtp_code})"))
                    _drop(smtp)
                    smtp = None
                except Exception as exc:
                    delivery = _smtp_failure(exc)
                    deliveries.append(delivery)
                    if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)) or (
                        isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421
                    ):
                        _drop(smtp)
                        smtp = None
            finished = True
        finally:
            if smtp is not None:
                if finished:
                    self._give_back(smtp)
                else:
                    _drop(smtp, quit=True)
        return deliveries

    def close(self) -> None:
        """Say goodbye on every pooled connection (the runner is stopping)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for smtp, _ in idle:
            _drop(smtp, quit=True)


def _drop(smtp: smtplib.SMTP | None, quit: bool = False) -> None:
    if smtp is None:
        return
    try:
        if quit:
            smtp.quit()
        else:
            smtp.close()
    except Exception:  # the connection is being thrown away anyway
        smtp.close()
    return None


def email_channel(settings: Settings) -> OutboxEmailChannel | SmtpEmailChannel:
    return SmtpEmailChannel(settings) if settings.smtp_host else OutboxEmailChannel(settings)


__all__ = ["build_message", "email_channel", "OutboxEmailChannel", "SmtpEmailChannel", "TransientError"]
