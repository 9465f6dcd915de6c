"""Email: SMTP through the standard library, or `.eml` files in the outbox.

One SMTP connection serves a whole chunk of a batch (reconnecting after a dropped
one) and goes back to a small pool for the next chunk or batch, so a drain of
thousands of messages opens about as many connections as there are delivery
threads. The `Message-ID` is derived from the step's idempotency key, so a repeat
after a crash carries the same id and the receiving side can drop it (and a reply
can be matched to its step by `In-Reply-To`).

Every message is `multipart/alternative`: the plain-text part and the sanitised
HTML part of `automations.engagement.outgoing`. With `AUTOMATIONS_PUBLIC_URL` set,
its links are tracked and `List-Unsubscribe` is the one-click `/t/u/` URL (RFC
8058); the tokens are signed with the key kept in the database, which the channel
is given or reads once, the first time it needs it.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import formataddr, formatdate, parseaddr
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
from automations.domain.db import Database
from automations.engagement.outgoing import BodyTooComplex, Tracking, render_email
from automations.engagement.tokens import (
    UNSUBSCRIBE,
    load_tracking_key,
    make_reply_token,
    make_token,
    reply_address,
)

log = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 30
# A pooled connection idle for longer is closed rather than reused (servers drop
# idle clients after a few minutes; RFC 5321 asks them to wait at least five).
SMTP_IDLE_REUSE_S = 60


class _UrlListHeader(UnstructuredHeader, BaseHeader):
    """`List-Unsubscribe`: URLs in angle brackets, which RFC 2369 does not allow to
    be encoded; the stock folding would turn a long URL into encoded words that
    mail providers do not read. Folded only after the commas between URLs."""

    def fold(self, *, policy: Policy) -> str:
        urls = [part.strip() for part in str(self).split(",")]
        return f"{self.name}: " + f",{policy.linesep} ".join(urls) + policy.linesep


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, each header's class made once: the stock one
    builds a new class on every lookup, a large share of composing a message."""

    def __init__(self) -> None:
        super().__init__()
        self.map_to_type("list-unsubscribe", _UrlListHeader)
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


def sender_address(sender: str) -> str:
    """The bare address of `sender` (which may be `Name <address>`)."""
    return parseaddr(sender)[1] or sender.strip()


def needs_key(settings: Settings, job: Job) -> bool:
    """Whether `job`'s message carries signed tokens: tracking or one-click
    unsubscribe (a public URL) or a reply token. A test message (no step) has none."""
    return job.step_id > 0 and bool(settings.public_url or settings.email_reply_tokens)


def build_message(settings: Settings, job: Job, *, tracking_key: str | None = None, track: bool = True) -> EmailMessage:
    """The email for `job` (see `compose_message`)."""
    return compose_message(settings, job, tracking_key=tracking_key, track=track)[0]


def compose_message(
    settings: Settings, job: Job, *, tracking_key: str | None = None, track: bool = True
) -> tuple[EmailMessage, list[str]]:
    """The email for `job`: personalised subject, a text and an HTML part, the
    idempotent Message-ID, `List-Unsubscribe` (one-click at the public URL, else
    `mailto:` the sender) and, with reply tokens on, a per-message `Reply-To`;
    and the URLs its click tokens stand for, in link order (empty when untracked).

    `tracking_key` signs the tokens (needed when `needs_key`); `track=False` leaves
    the links and the open pixel out while keeping the unsubscribe URL."""
    if not job.email:
        raise PermanentError("contact has no email address")
    problem = _address_problem(job.email)
    if problem is not None:
        raise PermanentError(f"invalid email address: {problem}")
    key = None
    if needs_key(settings, job):
        if not tracking_key:
            raise TransientError("the tracking key is not available")
        key = tracking_key
    public_url = settings.public_url
    track = track and job.track  # the campaign's (its template's) switch
    tracking = Tracking.for_step(public_url, key, job.step_id) if public_url and key and track else None
    try:
        rendered = render_email(job.subject, job.body or "", tracking=tracking)
    except BodyTooComplex as exc:
        raise PermanentError(str(exc)) from None
    sender = sender_address(settings.email_from)

    message = EmailMessage(policy=POLICY)
    message["From"] = settings.email_from
    message["To"] = job.email
    message["Subject"] = job.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{job.idempotency_key}@{sender_domain(settings.email_from)}>"
    if settings.email_reply_tokens and key:
        name = parseaddr(settings.email_from)[0]
        message["Reply-To"] = formataddr((name, reply_address(sender, make_reply_token(key, job.step_id))))
    if public_url and key:
        message["List-Unsubscribe"] = f"<{public_url}/t/u/{make_token(key, UNSUBSCRIBE, job.step_id)}>"
    else:
        message["List-Unsubscribe"] = f"<mailto:{sender}?subject=unsubscribe>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["X-Automations-Campaign"] = str(job.campaign_id)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    tracked = [link.url for link in rendered.links] if tracking is not None else []
    return message, tracked


def _result(message: EmailMessage, tracked: list[str], **more: str) -> dict[str, object]:
    """What the step keeps of a sent message: its Message-ID (replies are matched by
    it) and the URLs its click tokens lead to, by link index."""
    result: dict[str, object] = {"message_id": message["Message-ID"], **more}
    if tracked:
        result["links"] = tracked
    return result


KeySource = Callable[[], str]


class _TrackingKey:
    """The signing key of a channel: the one given, or read once from the database
    of `settings` the first time a message needs it (a failure is retried later)."""

    def __init__(self, settings: Settings, given: str | KeySource | None):
        self._settings = settings
        self._value = given if isinstance(given, str) else None
        self._source = given if callable(given) else self._from_settings
        self._lock = threading.Lock()

    def _from_settings(self) -> str:
        db = Database(settings=self._settings)
        try:
            return load_tracking_key(db)
        finally:
            db.dispose()

    def for_job(self, job: Job) -> str | None:
        if not needs_key(self._settings, job):
            return None
        with self._lock:
            if self._value is None:
                try:
                    self._value = self._source()
                except Exception as exc:  # the database's own message may name more than it should
                    raise TransientError(f"the tracking key could not be read: {type(exc).__name__}") from exc
            return self._value


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

    def __init__(self, settings: Settings, *, tracking_key: str | KeySource | None = None, track: bool = True):
        self.settings = settings
        self.folder = Path(settings.outbox_dir) / "email"
        self.key = _TrackingKey(settings, tracking_key)
        self.track = track

    def send_many(self, jobs: Sequence[Job]) -> list[Delivery]:
        self.folder.mkdir(parents=True, exist_ok=True)
        deliveries = []
        for job in jobs:
            try:
                message, tracked = compose_message(
                    self.settings, job, tracking_key=self.key.for_job(job), track=self.track
                )
                path = self.folder / f"{job.idempotency_key}.eml"
                temporary = path.with_suffix(".tmp")
                temporary.write_bytes(bytes(message))
                os.replace(temporary, path)
                deliveries.append(Delivery(SENT, f"written to {path}", _result(message, tracked, path=str(path))))
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

    def __init__(self, settings: Settings, *, tracking_key: str | KeySource | None = None, track: bool = True):
        self.settings = settings
        self.key = _TrackingKey(settings, tracking_key)
        self.track = track
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
                    message, tracked = compose_message(
                        self.settings, job, tracking_key=self.key.for_job(job), track=self.track
                    )
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
                    deliveries.append(Delivery(SENT, "sent via SMTP", _result(message, tracked)))
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


def email_channel(
    settings: Settings, *, tracking_key: str | KeySource | None = None, track: bool = True
) -> OutboxEmailChannel | SmtpEmailChannel:
    """SMTP when `AUTOMATIONS_SMTP_HOST` is set, else the outbox. `tracking_key` is
    the key (or a function reading it) that signs tracking tokens; by default it is
    read from the database at `settings.database_url` when first needed. `track`
    turns link and open tracking off for every message of the channel."""
    kind = SmtpEmailChannel if settings.smtp_host else OutboxEmailChannel
    return kind(settings, tracking_key=tracking_key, track=track)


__all__ = [
    "build_message",
    "compose_message",
    "email_channel",
    "needs_key",
    "OutboxEmailChannel",
    "SmtpEmailChannel",
    "TransientError",
]
