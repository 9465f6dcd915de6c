"""The engagement journey end to end, with real servers: Lead Nurture (7-day)
mailed through a real SMTP server, the lead's reply put in a real IMAP mailbox
(Dovecot), and one runner tick later the campaign has stopped and a follow-up
is waiting (bounces: tests/runner/test_mailbox.py, tests/channels/test_email.py;
one-click unsubscribe: tests/api/test_api_tracking.py, tests/browser/)."""

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
from automations.domain.models import AutomationCampaign, AutomationStep, AutomationTemplate, ScheduledFollowUp
from automations.runner.engine import Runner
from automations.services import campaigns, contacts
from automations.services.seed import seed_system_templates
from tests.channels.support import smtp_server
from tests.conftest import NOW
from tests.runner.imap_support import Dovecot, dovecot_server

NURTURE = "Lead Nurture (7-day)"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


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
        settings = dovecot.settings(smtp_host="127.0.0.1", smtp_port=port, email_from="team@sales.example")
        runner = Runner(db, settings, runner_id="journey", rng=random.Random(1))
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
