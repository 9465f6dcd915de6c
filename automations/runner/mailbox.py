"""The runner's mailbox poller (SPEC section 11): replies, auto-replies and bounces
read from an IMAP mailbox and processed once, however many runners poll it.

Each poll logs in (`imaplib`, TLS unless `AUTOMATIONS_IMAP_SSL=0`), selects the
folder and searches it by UID. A message is known by its mailbox key
`host/folder/UIDVALIDITY` and its UID. Before it is fetched, a runner claims it
in a transaction of its own: a row of `inbound_messages` for (mailbox, uid) with
a placeholder fingerprint and no `processed_at`; the unique (mailbox, uid) decides
which runner processes it. The message is then fetched without touching its
flags, processed (`process_inbound` completes the claim row in the transaction
of the effect) and marked `\\Seen`. A claim left unfinished (a runner killed
between claim and processing) is taken over once it is older than the lease; a
message whose processing fails is tried again after the lease, and given up
(`classification` "failed") after `MAX_ATTEMPTS`. Each poll searches only above
the highest UID below which every message is done.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import InboundMessage
from automations.domain.timeutil import as_utc, utcnow
from automations.services.engagement import ClaimLost, process_inbound

log = logging.getLogger("automations.runner.mailbox")

IMAP_TIMEOUT_S = 30.0  # per socket operation: a silent server must not hold the tick forever
MAX_ATTEMPTS = 5  # a message that fails this often is given up (kept in inbound_messages as "failed")
FAILED = "failed"  # the classification of a message given up
RETRY = "retry"  # a message that failed and is tried again after the lease
CLAIM_PREFIX = "claim:"  # the fingerprint of a claim row until the message is processed
CHUNK = 500  # UIDs per query (SQLite bounds the parameters of one statement)

Connect = Callable[[Settings], imaplib.IMAP4]


class MailboxUnavailable(Exception):
    """The mailbox cannot be read now (server down, login refused, no such folder).
    The message says why, never with the password."""


@dataclass
class PollSummary:
    """What one poll did."""

    mailbox: str = ""
    found: int = 0  # UIDs above the high-water mark
    processed: int = 0
    skipped: int = 0  # done already, or claimed by another runner
    failed: int = 0
    by_class: dict[str, int] = field(default_factory=dict)


def connect(settings: Settings) -> imaplib.IMAP4:
    """An IMAP connection to the configured server, logged in."""
    host = settings.imap_host or ""
    port = settings.imap_port or (993 if settings.imap_ssl else 143)
    where = f"{host}:{port}"
    try:
        if settings.imap_ssl:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                host, port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT_S
            )
        else:
            conn = imaplib.IMAP4(host, port, timeout=IMAP_TIMEOUT_S)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxUnavailable(f"cannot connect to the IMAP server {where}: {_reason(exc, settings)}") from None
    password = settings.imap_password.get_secret_value() if settings.imap_password else ""
    try:
        conn.login(settings.imap_username or "", password)
    except (OSError, imaplib.IMAP4.error) as exc:
        _close(conn)
        raise MailboxUnavailable(
            f"the IMAP server {where} refused the login of {settings.imap_username!r}: {_reason(exc, settings)}"
        ) from None
    return conn


def _reason(exc: BaseException, settings: Settings) -> str:
    """The error's text, with the password blanked should a server echo it."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc.args[0] if exc.args else None, bytes):
        text = exc.args[0].decode(errors="replace")
    secret = settings.imap_password.get_secret_value() if settings.imap_password else ""
    return text.replace(secret, "***") if secret else text


def _close(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):  # gone already: nothing left to release
        conn.logout()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MailboxPoller:
    """Polls the configured mailbox at most every `settings.imap_interval` seconds
    (`poll_if_due`, a tick job of the runner) and processes what came in."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        runner_id: str,
        lease: timedelta,
        connect: Connect = connect,
        should_stop: Callable[[], bool] = lambda: False,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.db = db
        self.settings = settings
        self.runner_id = runner_id
        self.lease = lease
        self._connect = connect
        self._should_stop = should_stop
        self._monotonic = monotonic
        self._next_poll: float | None = None
        # Per mailbox key: every UID up to this one is done; later polls search above it.
        self._done_up_to: dict[str, int] = {}

    def poll_if_due(self, now: datetime | None = None) -> PollSummary | None:
        """`poll(now)` unless the last poll began less than the interval ago."""
        began = self._monotonic()
        if self._next_poll is not None and began < self._next_poll:
            return None
        self._next_poll = began + self.settings.imap_interval
        return self.poll(now)

    def poll(self, now: datetime | None = None) -> PollSummary:
        """Process every message of the folder not processed yet; `MailboxUnavailable`
        when the server cannot be reached, refuses the login or lacks the folder."""
        now = as_utc(now or utcnow())
        conn = self._connect(self.settings)
        try:
            summary = self._poll(conn, now)
        except (OSError, imaplib.IMAP4.abort) as exc:  # the connection broke mid-poll
            raise MailboxUnavailable(f"the IMAP connection broke: {_reason(exc, self.settings)}") from None
        except imaplib.IMAP4.error as exc:  # a command the server refused
            raise MailboxUnavailable(f"the IMAP server refused a command: {_reason(exc, self.settings)}") from None
        finally:
            _close(conn)
        if summary.processed or summary.failed:
            classes = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_class.items())) or "none"
            log.info(
                "mailbox %s: %d message(s) processed (%s)%s",
                summary.mailbox,
                summary.processed,
                classes,
                f", {summary.failed} failed" if summary.failed else "",
            )
        return summary

    def _poll(self, conn: imaplib.IMAP4, now: datetime) -> PollSummary:
        key = self._select(conn)
        summary = PollSummary(mailbox=key)
        floor = self._done_up_to.get(key, 0)
        uids = self._search(conn, floor)
        summary.found = len(uids)
        done, todo = self._sort_out(key, uids, now)
        summary.skipped += len(uids) - len(todo)
        for uid in todo:
            if self._should_stop():
                break
            outcome = self._take(conn, key, uid, now)
            if outcome is None:
                summary.skipped += 1
            elif outcome in (RETRY, FAILED):
                summary.failed += 1
                if outcome == FAILED:
                    done.add(uid)
            else:
                summary.processed += 1
                summary.by_class[outcome] = summary.by_class.get(outcome, 0) + 1
                done.add(uid)
        for uid in uids:  # the UIDs come sorted
            if uid not in done:
                break
            floor = uid
        self._done_up_to[key] = floor
        return summary

    def _select(self, conn: imaplib.IMAP4) -> str:
        folder = self.settings.imap_folder
        typ, data = conn.select(_quoted(folder))
        if typ != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise MailboxUnavailable(f"cannot open the IMAP folder {folder!r}: {detail}")
        _, validity = conn.response("UIDVALIDITY")
        if not validity or not isinstance(validity[0], bytes):
            raise MailboxUnavailable(f"the IMAP server gave no UIDVALIDITY for {folder!r}")
        return f"{self.settings.imap_host}/{folder}/{int(validity[0])}"

    def _search(self, conn: imaplib.IMAP4, floor: int) -> list[int]:
        """The UIDs above `floor`, ascending (`n:*` always includes the highest UID)."""
        typ, data = conn.uid("SEARCH", f"UID {floor + 1}:*" if floor else "ALL")
        if typ != "OK":
            raise MailboxUnavailable(f"the IMAP server refused UID SEARCH: {data!r}")
        found = b" ".join(d for d in data if isinstance(d, bytes)).split()
        return sorted(uid for uid in (int(x) for x in found) if uid > floor)

    def _sort_out(self, key: str, uids: list[int], now: datetime) -> tuple[set[int], list[int]]:
        """The UIDs already processed, and those to take: never claimed, or claimed
        longer than the lease ago and not finished."""
        stale = now - self.lease
        done: set[int] = set()
        busy: set[int] = set()
        with self.db.read_session() as session:
            for part in _chunks(uids):
                rows = session.execute(
                    select(InboundMessage.uid, InboundMessage.processed_at, InboundMessage.received_at).where(
                        InboundMessage.mailbox == key, InboundMessage.uid.in_(part)
                    )
                )
                for uid, processed_at, claimed_at in rows:
                    if uid is None:
                        continue
                    if processed_at is not None:
                        done.add(uid)
                    elif as_utc(claimed_at) >= stale:
                        busy.add(uid)
        return done, [uid for uid in uids if uid not in done and uid not in busy]

    def _take(self, conn: imaplib.IMAP4, key: str, uid: int, now: datetime) -> str | None:
        """Claim, fetch and process one message: its classification, RETRY (failed
        this time), FAILED (given up), or None when another runner has it."""
        token = self._claim(key, uid, now)
        if token is None:
            return None
        try:
            raw = self._fetch(conn, uid)
        except (OSError, imaplib.IMAP4.abort):
            self._release(token)  # not processed: the next poll takes it again at once
            raise
        except imaplib.IMAP4.error as exc:  # this message only: the next poll tries it again
            log.warning("mailbox %s: UID %d could not be fetched: %s", key, uid, exc)
            self._release(token)
            return RETRY
        if raw is None:  # expunged meanwhile: its UID will not come back
            log.info("mailbox %s: UID %d is gone", key, uid)
            self._release(token)
            return None
        try:
            with self.db.session() as session:
                result = process_inbound(session, raw, source="imap", mailbox=key, uid=uid, now=now, claim=token)
        except ClaimLost:
            return None
        except Exception as exc:  # one bad message must not stop the others
            log.exception("mailbox %s: UID %d could not be processed", key, uid)
            return FAILED if self._record_failure(key, uid, token, exc, now) else RETRY
        log.info(
            "mailbox %s: UID %d: %s%s%s",
            key,
            uid,
            result.classification,
            f" (step {result.step_id})" if result.step_id is not None else "",
            " (processed before)" if result.duplicate else "",
        )
        try:
            conn.uid("STORE", str(uid), "+FLAGS", "(\\Seen)")
        except imaplib.IMAP4.error as exc:  # processed all the same; only the flag is missing
            log.warning("mailbox %s: UID %d not marked as read: %s", key, uid, exc)
        return result.classification

    def _claim(self, key: str, uid: int, now: datetime) -> str | None:
        """A claim token for (key, uid), or None when another runner holds a live claim or it is done."""
        token = f"{CLAIM_PREFIX}{uuid.uuid4().hex}"
        try:
            with self.db.session() as session:
                session.add(
                    InboundMessage(
                        fingerprint=token,
                        source="imap",
                        mailbox=key,
                        uid=uid,
                        received_at=now,
                        processed_at=None,
                        detail={"claimed_by": self.runner_id},
                    )
                )
        except IntegrityError:
            # Claimed before: take it over only if that claim was left unfinished.
            with self.db.session() as session:
                taken = session.execute(
                    update(InboundMessage)
                    .where(
                        InboundMessage.mailbox == key,
                        InboundMessage.uid == uid,
                        InboundMessage.processed_at.is_(None),
                        InboundMessage.received_at < now - self.lease,
                    )
                    .values(fingerprint=token, received_at=now)
                    .execution_options(synchronize_session=False)
                )
                if not taken.rowcount:  # type: ignore[attr-defined]  # a CursorResult
                    return None
            log.warning("mailbox %s: UID %d taken over from an unfinished claim", key, uid)
        return token

    def _fetch(self, conn: imaplib.IMAP4, uid: int) -> bytes | None:
        """The raw message, without setting `\\Seen` (BODY.PEEK); None when it is gone."""
        typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if typ != "OK":
            raise imaplib.IMAP4.error(f"FETCH {uid} failed: {data!r}")
        for item in data:
            if isinstance(item, tuple) and b"BODY[]" in item[0]:
                return item[1]
        return None

    def _release(self, token: str) -> None:
        with self.db.session() as session:
            session.execute(
                delete(InboundMessage).where(InboundMessage.fingerprint == token, InboundMessage.processed_at.is_(None))
            )

    def _record_failure(self, key: str, uid: int, token: str, exc: Exception, now: datetime) -> bool:
        """Keep the claim with the error (tried again after the lease), or give the
        message up after `MAX_ATTEMPTS` (True)."""
        try:
            with self.db.session() as session:
                row = session.scalar(select(InboundMessage).where(InboundMessage.fingerprint == token))
                if row is None or row.processed_at is not None:
                    return False
                attempts = int((row.detail or {}).get("attempts", 0)) + 1
                row.detail = {"attempts": attempts, "error": f"{type(exc).__name__}: {exc}"[:500]}
                if attempts >= MAX_ATTEMPTS:
                    row.processed_at = now
                    row.classification = FAILED
                    log.error("mailbox %s: UID %d given up after %d attempts", key, uid, attempts)
                    return True
        except Exception:  # the claim expires all the same
            log.exception("mailbox %s: UID %d: the failure could not be recorded", key, uid)
        return False


def _chunks(values: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


__all__ = ["MAX_ATTEMPTS", "MailboxPoller", "MailboxUnavailable", "PollSummary", "connect"]
