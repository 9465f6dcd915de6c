"""Tracking through the real API server (`python -m automations api`), as a
recipient's mail client reaches it: an email sent by the runner with a public URL
carries an open pixel, rewritten links and a one-click `List-Unsubscribe`; those
URLs, fetched with an HTTP client, record the open and the click, redirect to the
real link, refuse a tampered token and opt the contact out. The hits queued in
the server are written when it stops (SIGTERM)."""

from __future__ import annotations

import email
import email.policy
import random
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import AutomationStep, Contact, ContactEvent, EngagementEvent
from automations.domain.timeutil import utcnow
from automations.runner.engine import Runner
from tests.browser.conftest import start_api_server, stop_process
from tests.channels.support import add_campaign, add_contact

PRICING = "https://example.com/pricing?plan=team"
BODY = f"Hi Ada,\n\nOur plans are on [the pricing page]({PRICING}).\n\nThe team"


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    process, url = start_api_server(db.url, tmp_path / "api.log", "live-test-token")
    yield url, process
    stop_process(process)


def _send(db: Database, public_url: str, outbox: Path) -> tuple[int, int, email.message.EmailMessage]:
    now = utcnow()
    contact_id = add_contact(db, now, email="ada@example.com")
    step = {"name": "Pricing", "message_type": "email", "subject": "Our plans", "body": BODY}
    add_campaign(db, contact_id, [step], start_at=now, now=now)
    settings = Settings(_env_file=None, outbox_dir=outbox, public_url=public_url, email_from="team@sales.example")
    runner = Runner(db, settings, runner_id="live", rng=random.Random(1))
    try:
        assert runner.tick(now + timedelta(seconds=1)).executed == 1
    finally:
        runner.close()
    [path] = (outbox / "email").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    with db.session() as session:
        sent = session.scalars(select(AutomationStep)).one()
        assert sent.status == "sent"
        # An hour later: the recipient, not a privacy proxy fetching at delivery.
        sent.executed_at = now - timedelta(hours=1)
        return contact_id, sent.id, message


def test_the_pixel_a_tracked_link_and_one_click_unsubscribe_through_the_server(
    db: Database, server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, process = server
    contact_id, step_id, message = _send(db, url, tmp_path / "outbox")
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    [pixel] = re.findall(rf'<img[^>]+src="({re.escape(url)}/t/o/[^"]+)"', html)
    [link] = re.findall(rf'<a[^>]+href="({re.escape(url)}/t/c/[^"]+)"', html)
    assert PRICING not in html  # the link itself is not in the message, only its tracked form
    unsubscribe = str(message["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith(f"{url}/t/u/")
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"

    reader = {"User-Agent": "Mozilla/5.0 (Macintosh) Thunderbird/128.0"}
    with httpx.Client(headers=reader, timeout=10) as client:
        opened = client.get(pixel)
        assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
        assert opened.content.startswith(b"GIF89a")
        clicked = client.get(link, follow_redirects=False)
        assert clicked.status_code == 302 and clicked.headers["location"] == PRICING
        token = link.rsplit("/", 1)[1]
        for bad in (token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), "x" * 40):
            refused = client.get(f"{url}/t/c/{bad}", follow_redirects=False)
            assert refused.status_code == 404 and "location" not in refused.headers
        one_click = client.post(
            unsubscribe,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert one_click.status_code == 200 and "unsubscribed" in one_click.text

    with db.read_session() as session:  # the opt-out is written at once
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.email_opt_out
    stop_process(process)  # SIGTERM: the server writes the hits it queued
    with db.read_session() as session:
        step = session.get(AutomationStep, step_id)
        assert step is not None and step.opened_at is not None and step.clicked_at is not None
        events = session.execute(select(EngagementEvent.kind, EngagementEvent.machine, EngagementEvent.url)).all()
        # The unsubscribe was written at once, the open and the click at the stop.
        assert sorted(events) == [("click", False, PRICING), ("open", False, None), ("unsubscribe", False, None)]
        kinds = set(session.scalars(select(ContactEvent.kind)))
        assert {"email_opened", "link_clicked", "unsubscribed"} <= kinds
