"""The links recipients follow from an email (SPEC section 11): the open pixel, a
tracked link, the unsubscribe page and one-click unsubscribe, with no bearer
token; a tampered token is a 404, never an open redirect."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from automations.domain.db import Database
from automations.domain.models import AutomationStep, Contact, ContactEvent, EngagementEvent
from automations.engagement.tokens import get_tracking_key, make_token
from tests.api.conftest import EMAIL_STEP, Clock

PRICING = "https://example.com/pricing?plan=team"


@pytest.fixture
def sent_step(api: TestClient, db: Database, clock: Clock, contact_id: int) -> int:
    created = api.post(
        "/api/automation/campaigns/", json={"name": "N", "contact_id": contact_id, "steps": [EMAIL_STEP]}
    )
    step_id = int(created.json()["steps"][0]["id"])
    with db.session() as session:
        step = session.get(AutomationStep, step_id)
        assert step is not None
        step.status = "sent"
        step.executed_at = clock.now - timedelta(hours=1)
        step.result = {"message_id": "<x@localhost>", "links": [PRICING]}
    return step_id


@pytest.fixture
def visitor(api: TestClient) -> TestClient:
    """A recipient's browser: no API token."""
    return TestClient(api.app)


def _token(db: Database, kind: str, step_id: int, link: int | None = None) -> str:
    with db.session() as session:
        return make_token(get_tracking_key(session), kind, step_id, link)


def test_the_pixel_records_an_open_once_and_a_proxy_as_machine(
    visitor: TestClient, db: Database, sent_step: int
) -> None:
    token = _token(db, "o", sent_step)
    proxy = visitor.get(f"/t/o/{token}", headers={"User-Agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"})
    assert proxy.status_code == 200 and proxy.headers["content-type"] == "image/gif"
    with db.read_session() as session:
        assert session.get(AutomationStep, sent_step).opened_at is None  # type: ignore[union-attr]
    person = visitor.get(f"/t/o/{token}", headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Thunderbird/128"})
    assert person.status_code == 200
    with db.read_session() as session:
        assert session.get(AutomationStep, sent_step).opened_at is not None  # type: ignore[union-attr]
        events = session.execute(select(EngagementEvent.kind, EngagementEvent.machine)).all()
        assert sorted(events) == [("open", False), ("open", True)]
        assert session.scalar(select(ContactEvent.kind).where(ContactEvent.kind == "email_opened")) == "email_opened"


def test_a_tracked_link_redirects_to_the_messages_own_link(visitor: TestClient, db: Database, sent_step: int) -> None:
    answer = visitor.get(f"/t/c/{_token(db, 'c', sent_step, 0)}", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == PRICING
    with db.read_session() as session:
        assert session.get(AutomationStep, sent_step).clicked_at is not None  # type: ignore[union-attr]
        event = session.scalars(select(ContactEvent).where(ContactEvent.kind == "link_clicked")).one()
        assert event.payload["url"] == PRICING
    # a link index the message did not have, another step, a tampered token: 404
    assert visitor.get(f"/t/c/{_token(db, 'c', sent_step, 7)}", follow_redirects=False).status_code == 404
    assert visitor.get(f"/t/c/{_token(db, 'c', 999_999, 0)}", follow_redirects=False).status_code == 404
    token = _token(db, "c", sent_step, 0)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert visitor.get(f"/t/c/{tampered}", follow_redirects=False).status_code == 404
    assert visitor.get(f"/t/o/{_token(db, 'u', sent_step)}").status_code == 404  # a token of another kind


def test_one_click_unsubscribe_opts_the_contact_out(
    visitor: TestClient, db: Database, sent_step: int, contact_id: int
) -> None:
    token = _token(db, "u", sent_step)
    page = visitor.get(f"/t/u/{token}")
    assert page.status_code == 200 and "<form method=post" in page.text and "Unsubscribe" in page.text
    with db.read_session() as session:
        assert not session.get(Contact, contact_id).email_opt_out  # type: ignore[union-attr]  # a GET changes nothing
    done = visitor.post(
        f"/t/u/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "unsubscribed" in done.text
    with db.read_session() as session:
        assert session.get(Contact, contact_id).email_opt_out  # type: ignore[union-attr]
        assert session.scalar(select(ContactEvent.kind).where(ContactEvent.kind == "unsubscribed")) == "unsubscribed"
    assert visitor.post(f"/t/u/{token}x").status_code == 404
