"""The runner's mailbox poller against a real IMAP server (Dovecot, see
`imap_support`): replies, out-of-office replies and bounces appended to the
mailbox are processed by a tick, each once however many runners poll it, and a
mailbox that cannot be read leaves the runner's steps going."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    Contact,
    InboundMessage,
    ScheduledFollowUp,
)
from automations.domain.timeutil import UTC, utcnow
from automations.runner import mailbox
from automations.runner.engine import Runner
from automations.runner.mailbox import MailboxPoller
from automations.services import campaigns, contacts
from tests.conftest import NOW
from tests.runner.imap_support import PASSWORD, Dovecot, corpus_message, dovecot_server, free_port
from tests.runner.support import start_runner, stop_all, wait_until

REPLY = "gmail_reply_no_quote.txt"
OUT_OF_OFFICE = "ooo_exchange_en_with_date.txt"  # back on 15 January 2027
BOUNCE = "postfix_dsn_hard_511.txt"  # 5.1.1


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


def make_campaign(db: Database, first_name: str, *, start_at: datetime = NOW) -> tuple[int, list[str]]:
    """A contact and a campaign of three emails two days apart: the campaign id and its step keys."""
    steps = [
        {"name": "Welcome email", "message_type": "email", "subject": "Hi", "body": "Welcome aboard"},
        {"name": "Second email", "message_type": "email", "subject": "Hi", "body": "Still there?", "delay_days": 2},
        {"name": "Third email", "message_type": "email", "subject": "Hi", "body": "Last one", "delay_days": 2},
    ]
    with db.session() as s:
        contact = contacts.create_contact(
            s, {"first_name": first_name, "last_name": "Lee", "email": f"{first_name.lower()}@example.com"}, now=NOW
        )
        campaign = campaigns.create_campaign(
            s, {"name": "Nurture", "contact_id": contact.id, "start_at": start_at, "steps": steps}, now=NOW
        )
        return campaign.id, [step.idempotency_key for step in campaign.steps]


def count(db: Database, model: type) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def processed(db: Database) -> int:
    with db.read_session() as s:
        done = InboundMessage.processed_at.is_not(None)
        return s.scalar(select(func.count()).select_from(InboundMessage).where(done)) or 0


def test_one_tick_applies_a_reply_an_out_of_office_and_a_bounce_once(
    db: Database, dovecot: Dovecot, tmp_path: Path
) -> None:
    replied, replied_keys = make_campaign(db, "Ann")
    away, away_keys = make_campaign(db, "Bea")
    bounced, bounced_keys = make_campaign(db, "Cal")
    uids = dovecot.append(
        corpus_message(REPLY, replied_keys[0]),
        corpus_message(OUT_OF_OFFICE, away_keys[0]),
        corpus_message(BOUNCE, bounced_keys[0]),
    )
    runner = Runner(db, dovecot.settings(outbox_dir=tmp_path / "outbox"), rng=random.Random(1))
    try:
        summary = runner.tick(NOW)
        assert summary.errors == []
        assert summary.executed == 3  # the first email of each campaign went out as well

        with db.read_session() as s:
            reply_campaign = s.get(AutomationCampaign, replied)
            assert reply_campaign is not None and reply_campaign.status == "canceled"
            followup = s.scalars(select(ScheduledFollowUp)).one()
            assert followup.campaign_id == replied
            assert followup.title == "Ann Lee replied to 'Welcome email'"
            assert followup.notes.startswith("Not interested at the moment")

            held = s.scalars(
                select(AutomationStep).where(AutomationStep.campaign_id == away).order_by(AutomationStep.position)
            ).all()
            assert [step.status for step in held] == ["sent", "pending", "pending"]
            back = datetime(2027, 1, 15, tzinfo=UTC)
            assert back <= held[1].scheduled_at < back + timedelta(days=1)  # the morning of the return date
            assert held[2].scheduled_at - held[1].scheduled_at >= timedelta(days=2) - timedelta(hours=1)  # gap kept

            bounce_campaign = s.get(AutomationCampaign, bounced)
            assert bounce_campaign is not None
            contact = s.get(Contact, bounce_campaign.contact_id)
            assert contact is not None and contact.email_bouncing

            rows = s.scalars(select(InboundMessage).order_by(InboundMessage.uid)).all()
            assert [(r.uid, r.classification, r.source) for r in rows] == [
                (uids[0], "reply", "imap"),
                (uids[1], "auto_reply", "imap"),
                (uids[2], "bounce", "imap"),
            ]
            assert all(r.processed_at is not None and not r.fingerprint.startswith("claim:") for r in rows)
            assert len({r.mailbox for r in rows}) == 1
            assert rows[0].mailbox is not None and rows[0].mailbox.startswith(f"{dovecot.host}/INBOX/")
        assert dovecot.seen() == dict.fromkeys(uids, True)

        assert runner.mailbox is not None
        again = runner.mailbox.poll(NOW)
        assert (again.processed, again.failed, again.found) == (0, 0, 0)  # searched above the last UID only
        later = dovecot.append(corpus_message(REPLY, away_keys[1]))
        newer = runner.mailbox.poll(NOW)
        assert (newer.found, newer.processed, newer.by_class) == (1, 1, {"reply": 1})
        assert dovecot.seen()[later[0]]
    finally:
        runner.close()

    # A new poller (a restarted runner) searches everything again and processes nothing twice.
    fresh = MailboxPoller(db, dovecot.settings(), runner_id="fresh", lease=timedelta(seconds=30))
    restarted = fresh.poll(NOW)
    assert (restarted.found, restarted.processed, restarted.skipped) == (4, 0, 4)
    assert count(db, InboundMessage) == 4
    assert count(db, ScheduledFollowUp) == 2


def test_an_unfinished_claim_is_taken_over_after_the_lease_and_a_live_one_is_left(
    sqlite_db: Database, dovecot: Dovecot
) -> None:
    db = sqlite_db
    keys = [make_campaign(db, name)[1][0] for name in ("Ann", "Bea")]
    uids = dovecot.append(*(corpus_message(REPLY, key, message_id=f"r{i}@example.net") for i, key in enumerate(keys)))
    key = f"{dovecot.host}/INBOX/{uidvalidity(dovecot)}"
    lease = timedelta(seconds=30)
    with db.session() as s:  # a runner died after claiming the first; another is working on the second
        for uid, claimed_at, name in ((uids[0], NOW - 2 * lease, "dead"), (uids[1], NOW, "alive")):
            s.execute(
                insert(InboundMessage).values(
                    fingerprint=f"claim:{name}", source="imap", mailbox=key, uid=uid, received_at=claimed_at
                )
            )
    poller = MailboxPoller(db, dovecot.settings(), runner_id="heir", lease=lease)
    first = poller.poll(NOW)
    assert (first.processed, first.skipped) == (1, 1)
    assert dovecot.seen() == {uids[0]: True, uids[1]: False}
    later = poller.poll(NOW + 2 * lease)  # the second claim was never finished either
    assert later.processed == 1
    assert processed(db) == 2 and count(db, InboundMessage) == 2
    assert count(db, ScheduledFollowUp) == 2


def test_a_message_that_fails_does_not_stop_the_others_and_is_given_up_after_some_tries(
    sqlite_db: Database, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = sqlite_db
    keys = [make_campaign(db, name)[1][0] for name in ("Ann", "Bea", "Cal")]
    uids = dovecot.append(*(corpus_message(REPLY, key, message_id=f"r{i}@example.net") for i, key in enumerate(keys)))
    real = mailbox.process_inbound

    def broken_for_the_second(session, raw, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs["uid"] == uids[1]:
            raise RuntimeError("cannot digest this one")
        return real(session, raw, **kwargs)

    monkeypatch.setattr(mailbox, "process_inbound", broken_for_the_second)
    lease = timedelta(seconds=30)
    poller = MailboxPoller(db, dovecot.settings(), runner_id="r", lease=lease)
    first = poller.poll(NOW)
    assert (first.processed, first.failed) == (2, 1)
    assert dovecot.seen() == {uids[0]: True, uids[1]: False, uids[2]: True}
    assert poller.poll(NOW).failed == 0  # its claim holds it until the lease ends
    for attempt in range(2, mailbox.MAX_ATTEMPTS + 1):
        assert poller.poll(NOW + attempt * 2 * lease).failed == 1
    with db.read_session() as s:
        row = s.scalars(select(InboundMessage).where(InboundMessage.uid == uids[1])).one()
        assert row.classification == "failed" and row.processed_at is not None
        assert row.detail == {"attempts": mailbox.MAX_ATTEMPTS, "error": "RuntimeError: cannot digest this one"}
    assert poller.poll(NOW + 20 * lease).found == 0  # given up: no longer searched for


@pytest.mark.slow
def test_runners_polling_one_mailbox_process_each_message_once(
    pg_db: Database, dovecot: Dovecot, tmp_path: Path
) -> None:
    tomorrow = utcnow() + timedelta(days=1)  # nothing for the runners to send meanwhile
    made = [make_campaign(pg_db, f"P{i}", start_at=tomorrow) for i in range(30)]
    uids = dovecot.append(
        *(corpus_message(REPLY, keys[0], message_id=f"reply-{i}@example.net") for i, (_, keys) in enumerate(made))
    )
    processes = [start_runner(pg_db.url, tmp_path, f"r{i}", "--interval", "0.2", env=dovecot.env()) for i in range(3)]
    try:
        wait_until(lambda: processed(pg_db) == 30, 60, "the runners to process every message")
        wait_until(lambda: all(dovecot.seen().values()), 20, "every message to be marked as read")
        time.sleep(1.5)  # a few more polls of each runner, which must find nothing to do
    finally:
        codes = stop_all(processes)
    assert codes == [0, 0, 0]
    assert count(pg_db, InboundMessage) == 30
    with pg_db.read_session() as s:
        assert sorted(s.scalars(select(InboundMessage.uid))) == uids
        per_campaign = dict(
            s.execute(select(ScheduledFollowUp.campaign_id, func.count()).group_by(ScheduledFollowUp.campaign_id)).all()
        )
        statuses = set(s.scalars(select(AutomationCampaign.status)))
    assert per_campaign == {campaign_id: 1 for campaign_id, _ in made}
    assert statuses == {"canceled"}
    text = "".join((tmp_path / f"r{i}.log").read_text() for i in range(3))
    assert text.count(": reply (step ") == 30  # one "processed" line per message across the runners
    assert PASSWORD not in text


def test_a_refused_login_is_logged_without_the_password_and_the_steps_go_on(
    sqlite_db: Database, dovecot: Dovecot, tmp_path: Path
) -> None:
    db = sqlite_db
    wrong = "wrong-" + PASSWORD
    make_campaign(db, "Ann", start_at=utcnow() - timedelta(minutes=1))
    process = start_runner(db.url, tmp_path, "r", "--interval", "0.3", env=dovecot.env(AUTOMATIONS_IMAP_PASSWORD=wrong))
    log = tmp_path / "r.log"
    try:
        wait_until(lambda: count_sent(db) == 1, 30, "the runner to send the due email")
        wait_until(lambda: "refused the login" in log.read_text(), 20, "the login error in the log")
    finally:
        assert stop_all([process]) == [0]
    text = log.read_text()
    assert f"the IMAP server {dovecot.host}:{dovecot.port} refused the login of 'replies'" in text
    assert "Authentication failed" in text
    assert wrong not in text and PASSWORD not in text
    assert "Traceback" not in text


def test_a_server_that_is_down_is_an_error_of_the_tick_and_the_steps_go_on(
    sqlite_db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = sqlite_db
    make_campaign(db, "Ann")
    port = free_port()  # nothing listens there
    settings = Settings(
        _env_file=None,
        outbox_dir=tmp_path / "outbox",
        imap_host="127.0.0.1",
        imap_port=port,
        imap_username="replies",
        imap_password=PASSWORD,
        imap_ssl=False,
    )
    runner = Runner(db, settings, rng=random.Random(1))
    try:
        with caplog.at_level(logging.INFO):
            summary = runner.tick(NOW)
            assert summary.executed == 1
            assert len(summary.errors) == 1
            assert summary.errors[0].startswith(f"mailbox: cannot connect to the IMAP server 127.0.0.1:{port}: ")
            assert runner.tick(NOW).errors == []  # polled at most every AUTOMATIONS_IMAP_INTERVAL (30 s)
    finally:
        runner.close()
    assert f"tick job mailbox failed: cannot connect to the IMAP server 127.0.0.1:{port}" in caplog.text
    assert PASSWORD not in caplog.text


def test_no_imap_host_no_mailbox_job(sqlite_db: Database) -> None:
    runner = Runner(sqlite_db, Settings(_env_file=None))
    try:
        assert [name for name, _ in runner.tick_jobs] == ["steps", "rules"]
    finally:
        runner.close()


def count_sent(db: Database) -> int:
    with db.read_session() as s:
        sent = AutomationStep.status == "sent"
        return s.scalar(select(func.count()).select_from(AutomationStep).where(sent)) or 0


def uidvalidity(dovecot: Dovecot) -> int:
    conn = dovecot.client()
    try:
        conn.select("INBOX", readonly=True)
        _, data = conn.response("UIDVALIDITY")
    finally:
        conn.logout()
    assert data and isinstance(data[0], bytes)
    return int(data[0])
