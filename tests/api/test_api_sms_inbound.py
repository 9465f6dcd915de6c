"""Inbound SMS over HTTP, as an SMS provider's webhook posts it (Twilio's form fields):
STOP opts the number out of SMS, START opts it back in, any other text is an
inbound event the follow-up rules can trigger on; each message once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from automations.api import create_app
from automations.domain.db import Database
from automations.domain.models import AutomationStep, Contact, ContactEvent, EngagementEvent
from automations.services.sms_inbound import contacts_with_phone, keyword_class, normalize_phone
from tests.api.conftest import SMS_STEP, Clock, api_settings
from tests.conftest import query_plan

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


TWILIO_TOKEN = "twilio-auth-token-7f3a"
PUBLIC = "https://sms.example.com"


@pytest.fixture
def twilio(db: Database, clock: Clock, contact_id: int) -> Iterator[TestClient]:
    """Twilio's side of the webhook: no bearer token, only its signature."""
    settings = api_settings(sms_auth_token=TWILIO_TOKEN, public_url=PUBLIC)
    with TestClient(create_app(db, settings, clock=clock)) as client:
        yield client


def _signed(url: str, fields: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
    # Signed by Twilio's own library, so the check is against what Twilio really sends.
    signature = RequestValidator(token).compute_signature(url, fields)
    return {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}


STOP = {"From": PHONE, "To": "+15005550006", "Body": "STOP", "MessageSid": "SM9", "AccountSid": "AC1"}


def test_twilio_signed_stop_needs_no_bearer_token_and_gets_twiml(
    twilio: TestClient, db: Database, contact_id: int
) -> None:
    answer = twilio.post(INBOUND, data=STOP, headers=_signed(PUBLIC + INBOUND, STOP))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml") and "<Response/>" in answer.text
    assert _opted_out(db, contact_id) == (True, False)
    # Twilio is inconsistent about the default port: the signature over ":443" is as good.
    start = {**STOP, "Body": "START", "MessageSid": "SM10"}
    answer = twilio.post(INBOUND, data=start, headers=_signed(f"{PUBLIC}:443{INBOUND}", start))
    assert answer.status_code == 200
    assert _opted_out(db, contact_id) == (False, False)


def test_a_request_signed_over_the_url_it_reached_is_accepted_without_a_public_url(
    db: Database, clock: Clock, contact_id: int
) -> None:
    with TestClient(create_app(db, api_settings(sms_auth_token=TWILIO_TOKEN), clock=clock)) as client:
        answer = client.post(INBOUND, data=STOP, headers=_signed(f"http://testserver{INBOUND}", STOP))
    assert answer.status_code == 200, answer.text
    assert _opted_out(db, contact_id) == (True, False)


@pytest.mark.parametrize(
    "case",
    ["tampered body", "other token", "other url", "not a signature", "bearer-less without signature"],
)
def test_a_bad_twilio_signature_is_refused_and_changes_nothing(
    twilio: TestClient, db: Database, contact_id: int, case: str
) -> None:
    headers = _signed(PUBLIC + INBOUND, STOP)
    data = STOP
    if case == "tampered body":
        data = {**STOP, "From": "+14155550999"}
    elif case == "other token":
        headers = _signed(PUBLIC + INBOUND, STOP, token="someone-elses-token")
    elif case == "other url":
        headers = _signed(f"{PUBLIC}/api/automation/inbound/email", STOP)
    elif case == "not a signature":
        headers["X-Twilio-Signature"] = "not base64 at all!"
    else:
        del headers["X-Twilio-Signature"]
    answer = twilio.post(INBOUND, data=data, headers=headers)
    assert answer.status_code == 401
    detail = answer.json()["detail"]
    assert ("X-Twilio-Signature" in detail) if case != "bearer-less without signature" else ("bearer" in detail)
    assert TWILIO_TOKEN not in answer.text
    assert _opted_out(db, contact_id) == (False, False)
    assert _events(db) == []


def test_a_twilio_signature_without_the_auth_token_configured_is_refused(api: TestClient, contact_id: int) -> None:
    client = TestClient(api.app)  # no bearer token
    answer = client.post(INBOUND, data=STOP, headers=_signed(f"http://testserver{INBOUND}", STOP))
    assert answer.status_code == 401
    assert "AUTOMATIONS_SMS_AUTH_TOKEN" in answer.json()["detail"]


def test_the_sender_is_found_through_the_phone_index(db: Database) -> None:
    """An inbound SMS on a big contact list reads one index entry, not the table."""
    plan = query_plan(db, contacts_with_phone(PHONE), prefer_indexes=True)
    assert "ix_contacts_phone" in plan, plan


def test_a_hostile_host_header_is_a_refusal_not_a_server_error(
    twilio: TestClient, db: Database, contact_id: int
) -> None:
    """The URL checked is partly the request's own `Host`: a port that is no number
    must not break the check (the public URL's signature still counts)."""
    headers = {**_signed(PUBLIC + INBOUND, STOP), "Host": "sms.example.com:abc"}
    answer = twilio.post(INBOUND, data=STOP, headers=headers)
    assert answer.status_code == 200, answer.text  # signed over AUTOMATIONS_PUBLIC_URL
    forged = {**_signed("http://sms.example.com:abc" + INBOUND, STOP, token="wrong"), "Host": "sms.example.com:abc"}
    refused = twilio.post(INBOUND, data={**STOP, "MessageSid": "SM11"}, headers=forged)
    assert refused.status_code == 401
