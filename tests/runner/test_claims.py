"""Claiming due steps: the oldest due first, nothing not yet due, and on
PostgreSQL the planner setting the claim changes is back as it was."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from automations.domain.db import Database
from automations.runner.claims import claim_due_steps
from tests.channels.support import add_campaign, add_contact
from tests.conftest import NOW


def test_a_claim_takes_the_oldest_due_steps_first(db: Database) -> None:
    contact = add_contact(db, NOW - timedelta(days=1))
    for hours in (-1, -3, -2, 1):
        add_campaign(
            db,
            contact,
            [{"name": "a", "message_type": "task", "subject": "Call"}],
            start_at=NOW + timedelta(hours=hours),
            now=NOW - timedelta(days=1),
        )
    with db.session() as s:
        first = claim_due_steps(s, "r1", NOW, limit=2, lease=timedelta(minutes=5), max_attempts=3)
        if not db.is_sqlite:
            assert s.scalar(text("SHOW enable_sort")) == "on"
    with db.session() as s:
        rest = claim_due_steps(s, "r2", NOW, limit=5, lease=timedelta(minutes=5), max_attempts=3)
    assert [j.due_at for j in first] == [NOW - timedelta(hours=3), NOW - timedelta(hours=2)]
    assert [j.due_at for j in rest] == [NOW - timedelta(hours=1)]
