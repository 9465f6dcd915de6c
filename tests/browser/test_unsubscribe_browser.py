"""The unsubscribe page in Chromium, served by a real API server
(`python -m automations api`): the recipient presses the button, reads the
confirmation, and the contact is opted out of email in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from automations.domain.db import Database
from automations.domain.models import AutomationStep, Contact, ContactEvent, EngagementEvent
from automations.domain.timeutil import utcnow
from automations.engagement.tokens import load_tracking_key, make_token
from automations.services import campaigns, contacts
from tests.browser.conftest import start_api_server, stop_process

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def api_server(sqlite_db: Database, tmp_path: Path) -> Iterator[str]:
    """`python -m automations api` on the test's database, as an installation runs it."""
    process, url = start_api_server(sqlite_db.url, tmp_path / "api.log", "browser-test-token")
    yield url
    stop_process(process)


def _sent_email(db: Database) -> tuple[int, int]:
    """(contact id, step id) of an email step that was sent an hour ago."""
    now = utcnow()
    with db.session() as session:
        contact = contacts.create_contact(
            session, {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}, now=now
        )
        campaign = campaigns.create_campaign(
            session,
            {
                "name": "Newsletter",
                "contact_id": contact.id,
                "steps": [{"name": "Issue 1", "message_type": "email", "subject": "News", "body": "Hello"}],
            },
            now=now,
        )
        session.flush()
        step = session.get(AutomationStep, campaign.steps[0].id)
        assert step is not None
        step.status, step.executed_at = "sent", now - timedelta(hours=1)
        return contact.id, step.id


def test_the_recipient_unsubscribes_in_the_browser(api_server: str, sqlite_db: Database, page: Page) -> None:
    contact_id, step_id = _sent_email(sqlite_db)
    token = make_token(load_tracking_key(sqlite_db), "u", step_id)

    page.goto(f"{api_server}/t/u/{token}")
    expect(page).to_have_title("Unsubscribe")
    expect(page.get_by_text("Stop receiving these emails?")).to_be_visible()
    with sqlite_db.read_session() as session:
        assert session.get(Contact, contact_id).email_opt_out is False  # type: ignore[union-attr]  # a visit is not a click

    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    expect(page.get_by_text("You will get no more of these emails.")).to_be_visible()
    assert page.url == f"{api_server}/t/u/{token}"

    with sqlite_db.read_session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.email_opt_out and not contact.sms_opt_out
        kinds = session.query(EngagementEvent.kind, EngagementEvent.step_id).all()
        assert kinds == [("unsubscribe", step_id)]
        assert session.query(ContactEvent).filter(ContactEvent.kind == "unsubscribed").count() == 1

    # A tampered link shows the error page, not a form.
    page.goto(f"{api_server}/t/u/{token[:-2]}xx")
    expect(page.get_by_text("This link is not valid.")).to_be_visible()
    expect(page.get_by_role("button")).to_have_count(0)
