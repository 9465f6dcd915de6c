"""The links recipients follow from an email (SPEC section 11): the open pixel, a
tracked link, the unsubscribe page and one-click unsubscribe, with no bearer
token; a tampered token is a 404, never an open redirect."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from automations.api.tracking import flush_tracking
from automations.domain.db import Database
from automations.domain.models import AutomationStep, Contact, ContactEvent, EngagementEvent
from automations.domain.timeutil import utcnow
from automations.engagement.hits import Hit, HitWriter
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
    flush_tracking(visitor.app)  # type: ignore[arg-type]  # hits are written in batches
    with db.read_session() as session:
        assert session.get(AutomationStep, sent_step).opened_at is None  # type: ignore[union-attr]
    person = visitor.get(f"/t/o/{token}", headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Thunderbird/128"})
    assert person.status_code == 200
    flush_tracking(visitor.app)  # type: ignore[arg-type]
    with db.read_session() as session:
        assert session.get(AutomationStep, sent_step).opened_at is not None  # type: ignore[union-attr]
        events = session.execute(select(EngagementEvent.kind, EngagementEvent.machine)).all()
        assert sorted(events) == [("open", False), ("open", True)]
        assert session.scalar(select(ContactEvent.kind).where(ContactEvent.kind == "email_opened")) == "email_opened"


def test_a_tracked_link_redirects_to_the_messages_own_link(visitor: TestClient, db: Database, sent_step: int) -> None:
    answer = visitor.get(f"/t/c/{_token(db, 'c', sent_step, 0)}", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == PRICING
    flush_tracking(visitor.app)  # type: ignore[arg-type]
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


def test_hits_are_written_in_batches_and_the_first_open_wins(
    visitor: TestClient, db: Database, sent_step: int, clock: Clock
) -> None:
    opens, clicks = _token(db, "o", sent_step), _token(db, "c", sent_step, 0)
    visitor.get(f"/t/o/{opens}", headers={"User-Agent": "GoogleImageProxy"})  # reads the key and the step
    flush_tracking(visitor.app)  # type: ignore[arg-type]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if threading.current_thread().name != "tracking-hits":  # the writer's batches are expected
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for _ in range(20):
            clock.advance(timedelta(seconds=1))
            assert visitor.get(f"/t/o/{opens}", headers={"User-Agent": "Thunderbird/128"}).status_code == 200
            assert visitor.get(f"/t/c/{clicks}", follow_redirects=False).status_code == 302
        # The step is cached, the hits queued: the requests themselves read and wrote nothing.
        assert statements == []
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    flush_tracking(visitor.app)  # type: ignore[arg-type]
    with db.read_session() as session:
        step = session.get(AutomationStep, sent_step)
        assert step is not None and step.opened_at is not None and step.clicked_at is not None
        first_open, first_click = step.opened_at, step.clicked_at
        assert session.scalar(select(func.count()).select_from(EngagementEvent)) == 41
        kinds = session.scalars(select(ContactEvent.kind).where(ContactEvent.kind != "contact_created")).all()
        assert sorted(kinds) == ["email_opened"] + ["link_clicked"] * 20  # one open event, every click
    visitor.get(f"/t/o/{opens}", headers={"User-Agent": "Thunderbird/128"})
    flush_tracking(visitor.app)  # type: ignore[arg-type]
    with db.read_session() as session:
        step = session.get(AutomationStep, sent_step)
        assert step is not None and (step.opened_at, step.clicked_at) == (first_open, first_click)
        assert session.scalar(select(func.count()).where(ContactEvent.kind == "email_opened")) == 1


def test_the_writer_flushes_on_close_and_drops_hits_of_a_deleted_step(db: Database, sent_step: int) -> None:
    with db.read_session() as session:
        step = session.get(AutomationStep, sent_step)
        assert step is not None and step.executed_at is not None
        when = step.executed_at + timedelta(hours=1)
    writer = HitWriter(db, interval=60)
    writer.start()
    writer.add(Hit("open", sent_step, when))
    writer.add(Hit("click", 999_999, when, link_index=0, url=PRICING))  # no such step (deleted since)
    assert writer.pending() == 2
    writer.close()  # long before the interval: close writes what is queued
    assert writer.pending() == 0 and not writer.running
    with db.read_session() as session:
        assert session.scalars(select(EngagementEvent.step_id)).all() == [sent_step]
        assert session.get(AutomationStep, sent_step).opened_at == when  # type: ignore[union-attr]


def test_a_full_batch_is_written_without_waiting_for_the_interval(db: Database, sent_step: int) -> None:
    writer = HitWriter(db, interval=60, batch_size=10)
    writer.start()
    try:
        for n in range(10):
            writer.add(Hit("open", sent_step, utcnow() + timedelta(seconds=n), machine=True))
        deadline = time.monotonic() + 10
        while writer.written < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert writer.written == 10
    finally:
        writer.close()
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(EngagementEvent)) == 10
        assert session.get(AutomationStep, sent_step).opened_at is None  # type: ignore[union-attr]  # machines only


def test_a_head_request_is_answered_without_a_body_and_counted_as_a_machine(
    visitor: TestClient, db: Database, sent_step: int
) -> None:
    """Link checkers and proxies send HEAD; a person's mail client fetches with GET."""
    pixel = visitor.head(f"/t/o/{_token(db, 'o', sent_step)}", headers={"User-Agent": "Thunderbird/128"})
    assert pixel.status_code == 200 and pixel.content == b"" and pixel.headers["content-type"] == "image/gif"
    link = visitor.head(f"/t/c/{_token(db, 'c', sent_step, 0)}", follow_redirects=False)
    assert link.status_code == 302 and link.headers["location"] == PRICING
    flush_tracking(visitor.app)  # type: ignore[arg-type]
    with db.read_session() as session:
        assert session.get(AutomationStep, sent_step).opened_at is None  # type: ignore[union-attr]
        opens = session.scalars(select(EngagementEvent.machine).where(EngagementEvent.kind == "open")).all()
        assert opens == [True]


def test_a_link_with_a_line_break_cannot_add_a_header_to_the_redirect(
    visitor: TestClient, db: Database, sent_step: int
) -> None:
    with db.session() as session:
        step = session.get(AutomationStep, sent_step)
        assert step is not None
        step.result = {"message_id": "<x@localhost>", "links": ["https://example.com/a\r\nSet-Cookie: stolen=1"]}
    answer = visitor.get(f"/t/c/{_token(db, 'c', sent_step, 0)}", follow_redirects=False)
    assert answer.status_code == 302
    assert "set-cookie" not in answer.headers
    assert answer.headers["location"].startswith("https://example.com/a%0D%0ASet-Cookie")


def test_a_full_queue_slows_the_answer_down_instead_of_losing_the_hit(
    db: Database, sent_step: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from automations.api import tracking as tracking_module

    tracking = tracking_module.Tracking(db)
    tracking.writer = HitWriter(db, interval=60, batch_size=1000, max_pending=1)
    tracking.writer.start()
    when = utcnow()
    try:
        assert tracking.writer.add(Hit("open", sent_step, when, machine=True))  # the queue is now full
        # The writer gets to it 0.3 s later: the second hit waits for room, then is queued.
        timer = threading.Timer(0.3, tracking.writer.flush)
        timer.start()
        began = time.monotonic()
        asyncio.run(tracking.record(Hit("open", sent_step, when + timedelta(seconds=1), machine=True)))
        assert 0.25 < time.monotonic() - began < 3
        timer.join()
        assert tracking.writer.dropped == 0
        # A queue that stays full (the database down for long) drops the hit, counted and logged.
        accepted = 2
        while tracking.writer.add(Hit("open", sent_step, when + timedelta(seconds=accepted), machine=True)):
            accepted += 1
        monkeypatch.setattr(tracking_module, "FULL_WAIT_S", 0.1)
        asyncio.run(tracking.record(Hit("open", sent_step, when + timedelta(minutes=1), machine=True)))
        assert tracking.writer.dropped == 1
        assert "tracking hits queue full" in caplog.text
    finally:
        tracking.writer.close()
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(EngagementEvent)) == accepted


def test_a_link_scanners_click_is_redirected_but_is_no_persons_click(
    visitor: TestClient, db: Database, sent_step: int
) -> None:
    """Outlook Safe Links and the like follow every link as the message arrives: a
    rule "when someone clicks the pricing link" must not fire for them."""
    from automations.reports.engagement import link_clicks

    link = f"/t/c/{_token(db, 'c', sent_step, 0)}"
    scanner = {"User-Agent": "Mozilla/5.0 (compatible; SafeLinks; Microsoft Office 365)"}
    answer = visitor.get(link, headers=scanner, follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == PRICING
    flush_tracking(visitor.app)  # type: ignore[arg-type]
    with db.read_session() as session:
        assert session.get(AutomationStep, sent_step).clicked_at is None  # type: ignore[union-attr]
        assert session.execute(select(EngagementEvent.kind, EngagementEvent.machine)).all() == [("click", True)]
        assert session.scalar(select(func.count()).where(ContactEvent.kind == "link_clicked")) == 0
        assert link_clicks(session) == []

    person = visitor.get(link, headers={"User-Agent": "Thunderbird/128"}, follow_redirects=False)
    assert person.status_code == 302
    flush_tracking(visitor.app)  # type: ignore[arg-type]
    with db.read_session() as session:
        assert session.get(AutomationStep, sent_step).clicked_at is not None  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).where(ContactEvent.kind == "link_clicked")) == 1
        [row] = link_clicks(session)
        assert (row.url, row.clicks, row.recipients) == (PRICING, 1, 1)
