"""Inbound SMS over HTTP, as an SMS provider's webhook posts it (Twilio's form fields):
STOP opts the number out of SMS, START opts it back in, any other text is an
inbound event the follow-up rules can trigger on; each message once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from automations.domain.db import Database
from automations.domain.models import AutomationStep, Contact, ContactEvent, EngagementEvent
from automations.services.sms_inbound import keyword_class, normalize_phone
from tests.api.conftest import SMS_STEP, Clock

INBOUND = "/api/automation/inbound/sms"
PHONE = "+14155550123"  # the `contact_id` fixture's number


def _sms(api: TestClient, body: str, sender: str = PHONE, sid: str = "SM1") -> dict:
    answer = api.post(INBOUND, data={"From": sender, "To": "+15005550006", "Body": body, "MessageSid": sid})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    return answer.json()


def _opted_out(db: Database, contact_id: int) -> tuple[bool, bool]:
    """(out of SMS, out of email)."""
    with db.read_session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        return contact.sms_opt_out, contact.email_opt_out


def _events(db: Database) -> list[tuple[str, str | None, dict]]:
    with db.read_session() as session:
        rows = session.execute(
            select(ContactEvent.kind, ContactEvent.name, ContactEvent.payload).order_by(ContactEvent.id)
        )
        return [(kind, name, payload) for kind, name, payload in rows if kind not in ("contact_created",)]


@pytest.mark.parametrize("word", ["STOP", "stop", "  Stop \n", "STOPALL", "unsubscribe", "Cancel", "END", "quit"])
def test_a_stop_keyword_opts_the_number_out_of_sms(api: TestClient, db: Database, contact_id: int, word: str) -> None:
    assert _sms(api, word) == {"classification": "stop", "contact_ids": [contact_id], "duplicate": False}
    assert _opted_out(db, contact_id) == (True, False)
    with db.read_session() as session:
        event = session.scalars(select(EngagementEvent)).one()
        assert (event.kind, event.contact_id, event.detail) == ("unsubscribe", contact_id, {"channel": "sms"})
    assert [(kind, payload["channel"]) for kind, _name, payload in _events(db)] == [("unsubscribed", "sms")]


def test_stop_names_the_sms_it_answers_and_start_opts_back_in(
    api: TestClient, db: Database, clock: Clock, contact_id: int
) -> None:
    created = api.post("/api/automation/campaigns/", json={"name": "N", "contact_id": contact_id, "steps": [SMS_STEP]})
    step_id = int(created.json()["steps"][0]["id"])
    with db.session() as session:
        step = session.get(AutomationStep, step_id)
        assert step is not None
        step.status, step.executed_at = "sent", clock.now - timedelta(minutes=5)

    _sms(api, "STOP", sid="SM1")
    with db.read_session() as session:
        event = session.scalars(select(EngagementEvent)).one()
        assert (event.step_id, event.campaign_id) == (step_id, created.json()["id"])
    assert _sms(api, "STOP", sid="SM2")["classification"] == "stop"  # again: nothing more recorded
    with db.read_session() as session:
        assert len(session.scalars(select(EngagementEvent)).all()) == 1

    assert _sms(api, "start", sid="SM3") == {"classification": "start", "contact_ids": [contact_id], "duplicate": False}
    assert not _opted_out(db, contact_id)[0]
    assert [(kind, name) for kind, name, _payload in _events(db)] == [
        ("unsubscribed", None),
        ("inbound_event", "sms_start"),
    ]
    _sms(api, "UNSTOP", sid="SM4")  # already opted in: no new event
    assert len(_events(db)) == 2


def test_other_text_is_an_sms_reply_event_and_a_retry_is_applied_once(
    api: TestClient, db: Database, contact_id: int
) -> None:
    first = _sms(api, "Stop by tomorrow? Happy to talk.", sid="SMreply")
    assert first == {"classification": "reply", "contact_ids": [contact_id], "duplicate": False}
    assert not _opted_out(db, contact_id)[0]  # "stop" inside a sentence is not a keyword
    [(kind, name, payload)] = _events(db)
    assert (kind, name) == ("inbound_event", "sms_reply")
    assert payload["body"] == "Stop by tomorrow? Happy to talk." and payload["from"] == PHONE
    again = _sms(api, "Stop by tomorrow? Happy to talk.", sid="SMreply")
    assert again == {"classification": "reply", "contact_ids": [contact_id], "duplicate": True}
    assert len(_events(db)) == 1


def test_the_number_is_compared_in_e164_and_an_unknown_one_is_unmatched(
    api: TestClient, db: Database, contact_id: int
) -> None:
    assert _sms(api, "STOP", sender="+1 (415) 555-0123")["contact_ids"] == [contact_id]
    assert _opted_out(db, contact_id)[0]
    assert _sms(api, "STOP", sender="+14155550199", sid="SM9") == {
        "classification": "unmatched",
        "contact_ids": [],
        "duplicate": False,
    }


def test_the_route_needs_the_token_and_form_fields(api: TestClient) -> None:
    form = {"From": PHONE, "Body": "STOP"}
    assert TestClient(api.app).post(INBOUND, data=form).status_code == 401
    assert api.post(INBOUND, json=form).status_code == 422
    missing = api.post(INBOUND, data={"Body": "STOP"})
    assert missing.status_code == 422 and "From" in missing.text
    assert (
        api.post(
            INBOUND, content=b"From=%FF", headers={"Content-Type": "application/x-www-form-urlencoded"}
        ).status_code
        == 422
    )


def test_keywords_and_phone_numbers() -> None:
    assert [keyword_class(b) for b in ("STOP", " end ", "stop please", "START", "unstop", "hi")] == [
        "stop",
        "stop",
        "reply",
        "start",
        "start",
        "reply",
    ]
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize_phone("not a number") is None
