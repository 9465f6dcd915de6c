"""The same inbound message applied twice at the same moment (a mail forwarder or
an SMS provider retrying after a timeout): one applies it, the other answers
"duplicate" instead of failing, and the effect happens once."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import func, select

from automations.domain.db import Database
from automations.domain.models import ScheduledFollowUp
from automations.services.campaigns import create_campaign
from automations.services.contacts import create_contact
from automations.services.engagement import InboundResult, applied_once, process_inbound
from automations.services.sms_inbound import process_inbound_sms
from tests.conftest import NOW


def _reply(db: Database) -> bytes:
    with db.session() as s:
        ada = create_contact(s, {"first_name": "Ada", "email": "ada@example.com", "phone": "+14155550123"}, now=NOW)
        steps = [{"name": "Welcome email", "message_type": "email", "subject": "Hi", "body": "Welcome"}]
        campaign = create_campaign(s, {"name": "N", "contact_id": ada.id, "steps": steps}, now=NOW)
        key = campaign.steps[0].idempotency_key
    return (
        f"From: Ada <ada@example.com>\r\nSubject: Re: Hi\r\nIn-Reply-To: <{key}@localhost>\r\n\r\nYes, call me.\r\n"
    ).encode()


def _race(db: Database, first: Any, second: Any) -> tuple[Any, Any]:
    """`first` applied and flushed but not committed while `second` runs in another
    thread (on PostgreSQL it waits on the unique index, on SQLite on the write
    lock); then `first` commits."""
    results: dict[str, Any] = {}
    with db.session() as session:
        results["first"] = first(session)
        thread = threading.Thread(target=lambda: results.setdefault("second", applied_once(db, second)))
        thread.start()
        time.sleep(0.5)  # the second is now waiting for the first's transaction
    thread.join(timeout=30)
    assert not thread.is_alive()
    return results["first"], results["second"]


def test_a_reply_posted_twice_at_once_is_applied_once(db: Database) -> None:
    raw = _reply(db)

    def apply(session: Any) -> InboundResult:
        return process_inbound(session, raw, now=NOW)

    first, second = _race(db, apply, apply)
    assert (first.classification, first.duplicate) == ("reply", False)
    assert (second.classification, second.duplicate, second.step_id) == ("reply", True, first.step_id)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(ScheduledFollowUp)) == 1


def test_a_stop_retried_at_once_is_applied_once(db: Database) -> None:
    _reply(db)

    def apply(session: Any) -> Any:
        return process_inbound_sms(session, sender="+14155550123", body="STOP", message_sid="SM1", now=NOW)

    first, second = _race(db, apply, apply)
    assert (first.classification, first.duplicate) == ("stop", False)
    assert second.duplicate is True and second.contact_ids == first.contact_ids
