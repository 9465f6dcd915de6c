"""The engagement journey end to end, with real servers: Lead Nurture (7-day)
mailed through a real SMTP server, the lead's reply put in a real IMAP mailbox
(Dovecot), and one runner tick later the campaign has stopped and a follow-up
is waiting; an out-of-office answer holds it until the date it states; a hard
bounce stops email to the address (one-click unsubscribe:
tests/api/test_api_tracking.py, tests/browser/)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    Contact,
    ScheduledFollowUp,
)
from automations.runner.engine import Runner
from automations.services import campaigns, contacts
from automations.services.seed import seed_system_templates
from tests.channels.support import smtp_server
from tests.conftest import NOW
from tests.runner.imap_support import Dovecot, corpus_message, dovecot_server

NURTURE = "Lead Nurture (7-day)"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


def _runner(db: Database, dovecot: Dovecot, smtp_port: int, outbox: Path) -> Runner:
    """A runner mailing through the test's SMTP server and polling its IMAP mailbox."""
    settings = dovecot.settings(
        smtp_host="127.0.0.1", smtp_port=smtp_port, email_from="team@sales.example", outbox_dir=outbox
    )
    return Runner(db, settings, runner_id="journey", rng=random.Random(1))


def _start_nurture(db: Database) -> int:
    with db.session() as s:
        seed_system_templates(s)
        template = s.scalars(select(AutomationTemplate).where(AutomationTemplate.name == NURTURE)).one()
        ada = contacts.create_contact(s, {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
        campaign = campaigns.create_campaign(
            s, {"name": NURTURE, "contact_id": ada.id, "template_id": template.id}, now=NOW
        )
        return campaign.id


def _reply_to(sent: EmailMessage) -> bytes:
    """What Ada's mail client sends back: a new subject, the thread in its headers,
    the quoted message under her answer."""
    reply = EmailMessage()
    reply["From"] = "Ada Lovelace <ada@example.com>"
    reply["To"] = str(sent["Reply-To"] or sent["From"])
    reply["Subject"] = "Call on Thursday?"
    reply["Message-ID"] = make_msgid(domain="example.com")
    reply["In-Reply-To"] = str(sent["Message-ID"])
    reply["References"] = str(sent["Message-ID"])
    quoted = "\n".join(f"> {line}" for line in sent.get_body(("plain",)).get_content().splitlines())  # type: ignore[union-attr]
    reply.set_content(f"Yes please, Thursday at 3pm works.\n\nOn Mon, 2 Mar 2026, the team wrote:\n{quoted}\n")
    return reply.as_bytes()


def test_a_lead_who_replies_gets_no_more_emails_and_a_follow_up_appears_within_one_tick(
    db: Database, dovecot: Dovecot, tmp_path: Path
) -> None:
    campaign_id = _start_nurture(db)
    with smtp_server() as (sink, port):
        runner = _runner(db, dovecot, port, tmp_path)
        try:
            assert runner.tick(NOW + timedelta(seconds=1)).executed == 1  # the thank-you email
            [thanks] = sink.messages
            dovecot.append(_reply_to(thanks))

            summary = runner.tick(NOW + timedelta(minutes=1))  # one tick: the mailbox is polled
            assert summary.errors == []
            with db.read_session() as s:
                campaign = s.get(AutomationCampaign, campaign_id)
                assert campaign is not None and campaign.status == "canceled"
                followup = s.scalars(select(ScheduledFollowUp)).one()
                assert followup.title == "Ada Lovelace replied to 'Thank-you email'"
                assert followup.notes.startswith("Yes please, Thursday at 3pm works.")
                assert "wrote:" not in followup.notes
                first = s.scalars(select(AutomationStep).where(AutomationStep.position == 0)).one()
                assert first.replied_at is not None

            for day in range(1, 9):  # the rest of the week: nothing more goes out
                runner.tick(NOW + timedelta(days=day))
            assert len(sink.messages) == 1
        finally:
            runner.close()


def _answer_to(sent: EmailMessage, subject: str, text: str, **headers: str) -> bytes:
    answer = EmailMessage()
    answer["From"] = "Ada Lovelace <ada@example.com>"
    answer["To"] = str(sent["Reply-To"] or sent["From"])
    answer["Subject"] = subject
    answer["Message-ID"] = make_msgid(domain="example.com")
    answer["In-Reply-To"] = str(sent["Message-ID"])
    for name, value in headers.items():
        answer[name.replace("_", "-")] = value
    answer.set_content(text)
    return answer.as_bytes()


def _steps(db: Database, campaign_id: int) -> list[tuple[str, str, str | None]]:
    with db.read_session() as s:
        steps = s.scalars(
            select(AutomationStep).where(AutomationStep.campaign_id == campaign_id).order_by(AutomationStep.position)
        ).all()
        return [(step.name, step.status, step.last_error) for step in steps]


def test_an_out_of_office_reply_pauses_lead_nurture_until_the_stated_date(
    db: Database, dovecot: Dovecot, tmp_path: Path
) -> None:
    campaign_id = _start_nurture(db)
    with smtp_server() as (sink, port):
        runner = _runner(db, dovecot, port, tmp_path)
        try:
            runner.tick(NOW + timedelta(seconds=1))
            [thanks] = sink.messages
            dovecot.append(
                _answer_to(
                    thanks,
                    f"Out of Office: {thanks['Subject']}",
                    "Thank you for your message. I am out of the office until 16 March 2026 "
                    "and will read it when I am back.",
                    Auto_Submitted="auto-replied",
                )
            )
            assert runner.tick(NOW + timedelta(minutes=1)).errors == []
            with db.read_session() as s:
                campaign = s.get(AutomationCampaign, campaign_id)
                assert campaign is not None and campaign.status == "active"  # held, not stopped
                resources = s.scalars(select(AutomationStep).where(AutomationStep.name == "Resources email")).one()
                # Due on day 2 (4 March); now the morning of the return date.
                back = resources.scheduled_at
                assert NOW.replace(day=16) <= back < NOW.replace(day=17)
                assert s.scalars(select(ScheduledFollowUp)).all() == []  # an auto-reply is no reply

            for day in range(1, 14):  # 3 to 15 March: the resources email waits
                runner.tick(NOW + timedelta(days=day, hours=3))
            assert len(sink.messages) == 1
            runner.tick(back + timedelta(minutes=1))
            assert [m["Subject"] for m in sink.messages][1] == "Three ideas teams like yours start with"
            with db.read_session() as s:
                text = s.scalars(select(AutomationStep).where(AutomationStep.name == "Check-in text")).one()
                assert text.scheduled_at - back >= timedelta(days=3) - timedelta(hours=1)  # the gap is kept
        finally:
            runner.close()


def test_a_bounced_address_is_not_mailed_again(db: Database, dovecot: Dovecot, tmp_path: Path) -> None:
    campaign_id = _start_nurture(db)
    with smtp_server() as (sink, port):
        runner = _runner(db, dovecot, port, tmp_path)
        try:
            runner.tick(NOW + timedelta(seconds=1))
            [thanks] = sink.messages
            with db.read_session() as s:
                key = s.scalars(select(AutomationStep.idempotency_key).where(AutomationStep.position == 0)).one()
            assert key in str(thanks["Message-ID"])
            dovecot.append(corpus_message("postfix_dsn_hard_511.txt", key))  # 5.1.1 user unknown
            assert runner.tick(NOW + timedelta(minutes=1)).errors == []
            with db.read_session() as s:
                ada = s.scalars(select(Contact)).one()
                assert ada.email_bouncing
            for day in range(1, 9):
                runner.tick(NOW + timedelta(days=day, hours=3))
            assert len(sink.messages) == 1  # the resources email was not sent
            assert ("Resources email", "skipped", "email bounced") in _steps(db, campaign_id)
        finally:
            runner.close()
