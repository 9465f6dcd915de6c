"""Database helpers the runner's batches use: bulk inserts and id lists, with the
same results on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from automations.domain.db import Database, id_in, insert_rows
from automations.domain.models import Contact, ContactEvent, ScheduledFollowUp
from tests.channels.support import add_contact
from tests.conftest import NOW


def test_insert_rows_writes_what_the_models_read_back(db: Database) -> None:
    contact = add_contact(db, NOW)
    rows = [
        {
            "contact_id": contact,
            "kind": "step_failed",
            "name": None,
            "payload": {"error": 'SMTP 550 "no such user" – ünïcode', "step_id": i},
            "occurred_at": NOW + timedelta(minutes=i),
        }
        for i in range(3)
    ]
    rows[0]["occurred_at"] = NOW.replace(tzinfo=None)  # naive: taken as UTC, as everywhere
    with db.session() as s:
        insert_rows(s, ContactEvent.__table__, rows)
        insert_rows(s, ContactEvent.__table__, [])
    with db.read_session() as s:
        events = [
            (e.contact_id, e.payload, e.occurred_at, e.processed_at)
            for e in s.scalars(select(ContactEvent).where(ContactEvent.kind == "step_failed").order_by(ContactEvent.id))
        ]
    assert events == [(contact, rows[i]["payload"], NOW + timedelta(minutes=i), None) for i in range(3)]


def test_insert_rows_refuses_rows_without_the_python_defaults(db: Database) -> None:
    contact = add_contact(db, NOW)
    with db.session() as s, pytest.raises(ValueError, match="created_at"):
        insert_rows(
            s,
            ScheduledFollowUp.__table__,
            [{"contact_id": contact, "title": "Call", "notes": "", "due_at": NOW, "status": "pending"}],
        )


def test_id_in_selects_the_given_ids(db: Database) -> None:
    ids = [add_contact(db, NOW) for _ in range(3)]
    with db.read_session() as s:
        assert sorted(s.scalars(select(Contact.id).where(id_in(s, Contact.id, ids[:2])))) == ids[:2]
        assert list(s.scalars(select(Contact.id).where(id_in(s, Contact.id, [])))) == []
