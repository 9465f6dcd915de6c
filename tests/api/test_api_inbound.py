"""Inbound email over HTTP (SPEC section 11): a reply stops the campaign and creates
a follow-up, an out-of-office reply holds it until the stated date, a hard bounce
stops email to the address; each message once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from automations.domain.db import Database
from automations.domain.models import AutomationStep, Contact, ScheduledFollowUp
from tests.api.conftest import EMAIL_STEP, Clock

CAMPAIGNS = "/api/automation/campaigns/"
INBOUND = "/api/automation/inbound/email"
RFC822 = {"Content-Type": "message/rfc822"}


@pytest.fixture
def campaign(api: TestClient, contact_id: int) -> dict:
    steps = [
        {**EMAIL_STEP, "name": "Welcome email"},
        {**EMAIL_STEP, "name": "Second email", "delay_days": 2},
        {**EMAIL_STEP, "name": "Third email", "delay_days": 2},
    ]
    created = api.post(CAMPAIGNS, json={"name": "Nurture", "contact_id": contact_id, "steps": steps})
    assert created.status_code == 201, created.text
    return created.json()


def _message_id(db: Database, step_id: int) -> str:
    with db.read_session() as session:
        key = session.scalar(select(AutomationStep.idempotency_key).where(AutomationStep.id == step_id))
    return f"<{key}@localhost>"


def _reply(message_id: str, subject: str = "Re: Welcome", body: str = "Yes, call me tomorrow.") -> bytes:
    return (
        f"From: Ann Lee <ann@example.com>\r\nTo: automations@localhost\r\nSubject: {subject}\r\n"
        f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nMessage-ID: <reply-1@example.com>\r\n"
        f"In-Reply-To: {message_id}\r\nReferences: {message_id}\r\n\r\n{body}\r\n\r\n"
        f"On Mon, Mar 2, 2026 at 9:00 AM Automations <automations@localhost> wrote:\r\n> Welcome aboard\r\n"
    ).encode()


def test_a_reply_stops_the_campaign_and_creates_a_follow_up(api: TestClient, db: Database, campaign: dict) -> None:
    first = campaign["steps"][0]["id"]
    answer = api.post(INBOUND, content=_reply(_message_id(db, first), subject="New subject entirely"), headers=RFC822)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "classification": "reply",
        "step_id": first,
        "campaign_id": campaign["id"],
        "duplicate": False,
    }
    detail = api.get(f"{CAMPAIGNS}{campaign['id']}/").json()
    assert detail["status"] == "canceled"
    assert [s["status"] for s in detail["steps"]] == ["canceled", "canceled", "canceled"]
    assert detail["steps"][0]["replied_at"] is not None
    with db.read_session() as session:
        followup = session.scalars(select(ScheduledFollowUp)).one()
        assert followup.title == "Ann Lee replied to 'Welcome email'"
        assert followup.notes.startswith("Yes, call me tomorrow.")
        assert "wrote:" not in followup.notes and "Welcome aboard" not in followup.notes

    again = api.post(INBOUND, content=_reply(_message_id(db, first), subject="New subject entirely"), headers=RFC822)
    assert again.json()["duplicate"] is True
    with db.read_session() as session:
        assert len(session.scalars(select(ScheduledFollowUp)).all()) == 1


def test_an_out_of_office_reply_holds_the_campaign_until_the_stated_date(
    api: TestClient, db: Database, clock: Clock, campaign: dict
) -> None:
    first = campaign["steps"][0]["id"]
    before = [datetime.fromisoformat(s["scheduled_at"]) for s in campaign["steps"]]
    raw = (
        "From: Ann Lee <ann@example.com>\r\nSubject: Out of Office: Welcome\r\nAuto-Submitted: auto-replied\r\n"
        "Date: Mon, 02 Mar 2026 09:05:00 +0000\r\n"
        f"In-Reply-To: {_message_id(db, first)}\r\n\r\n"
        "I am out of the office and will be back on 20 March 2026.\r\n"
    ).encode()
    answer = api.post(INBOUND, content=raw, headers=RFC822).json()
    assert answer["classification"] == "auto_reply"
    detail = api.get(f"{CAMPAIGNS}{campaign['id']}/").json()
    assert detail["status"] == "active"
    after = [datetime.fromisoformat(s["scheduled_at"]) for s in detail["steps"]]
    assert after[0] == datetime.fromisoformat("2026-03-20T09:00:00+00:00")  # 09:00 on the return date, not midnight
    for (old_a, old_b), (new_a, new_b) in zip(
        zip(before, before[1:], strict=False), zip(after, after[1:], strict=False), strict=True
    ):
        assert new_b - new_a >= old_b - old_a - timedelta(hours=1)  # gaps kept


def test_a_hard_bounce_marks_the_address_and_later_emails_are_skipped(
    api: TestClient, db: Database, campaign: dict, contact_id: int
) -> None:
    first = campaign["steps"][0]["id"]
    raw = (
        "From: MAILER-DAEMON@mx.example.com\r\nTo: automations@localhost\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; ann@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {_message_id(db, first)}\r\n"
        "Subject: Hi Ann\r\n\r\n--b--\r\n"
    ).encode()
    answer = api.post(INBOUND, content=raw, headers=RFC822).json()
    assert answer["classification"] == "bounce" and answer["step_id"] == first
    with db.read_session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.email_bouncing
    # a new address is mailed again
    assert api.put(f"/api/contacts/{contact_id}/", json={"email": "ann.lee@example.org"}).status_code == 200
    with db.read_session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and not contact.email_bouncing


def test_an_answer_to_nothing_of_ours_is_unmatched(api: TestClient) -> None:
    answer = api.post(INBOUND, content=_reply("<someone-else@example.net>"), headers=RFC822)
    assert answer.status_code == 202
    assert answer.json()["classification"] == "unmatched" and answer.json()["step_id"] is None


def test_a_body_that_is_not_a_message_is_refused(api: TestClient) -> None:
    refused = api.post(INBOUND, content=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert refused.status_code == 422 and "message/rfc822" in refused.json()["errors"]["body"]
    empty = api.post(INBOUND, content=b"  ", headers=RFC822)
    assert empty.status_code == 422
