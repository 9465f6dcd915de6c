"""Several runners evaluating the same events on PostgreSQL apply each rule exactly once."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import datetime, timedelta

from sqlalchemy import func, select

from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    ContactEvent,
    RuleExecution,
    ScheduledFollowUp,
)
from automations.runner.rules import process_rules
from automations.services import contacts, followups, rules
from automations.services.seed import seed_system_templates
from tests.conftest import NOW

CONTACTS = 40


def _prepare(db: Database) -> tuple[int, int]:
    with db.session() as s:
        seed_system_templates(s)
        from automations.domain.models import AutomationTemplate

        onboarding = s.scalar(select(AutomationTemplate.id).where(AutomationTemplate.name == "Customer Onboarding"))
        rules.create_rule(
            s,
            {
                "name": "Trial",
                "trigger": "tag_added",
                "trigger_config": {"tag": "trial"},
                "action": "start_campaign",
                "action_config": {"template_id": onboarding},
            },
            now=NOW - timedelta(days=1),
        )
        rules.create_rule(
            s,
            {
                "name": "Welcome",
                "trigger": "contact_created",
                "action": "create_followup",
                "action_config": {"title": "Welcome {{ contact.first_name }}"},
            },
            now=NOW - timedelta(days=1),
        )
        rules.create_rule(
            s,
            {
                "name": "Overdue",
                "trigger": "followup_overdue",
                "trigger_config": {"days_overdue": 1},
                "action": "create_followup",
                "action_config": {"title": "Chase"},
            },
            now=NOW - timedelta(days=1),
        )
        for n in range(CONTACTS):
            contact = contacts.create_contact(
                s, {"first_name": f"P{n}", "email": f"p{n}@example.com", "tags": ["trial"]}, now=NOW
            )
            followups.create_followup(s, {"contact_id": contact.id, "title": "Quote", "due_at": NOW}, now=NOW)
            rules.post_inbound_event(s, contact.id, "ignored", {"n": n}, now=NOW)
    return CONTACTS, onboarding


def _runner(url: str, name: str, moments: list[datetime]) -> None:
    db = Database(url, settings=Settings(_env_file=None))
    try:
        for at in moments:
            # Small batches so that the runners interleave many times.
            while process_rules(db, now=at, runner_id=name, batch=10):
                pass
    finally:
        db.dispose()


def _check(db: Database, onboarding: int) -> None:
    with db.read_session() as s:
        assert (
            s.scalar(
                select(func.count()).select_from(AutomationCampaign).where(AutomationCampaign.template_id == onboarding)
            )
            == CONTACTS
        )
        assert (
            s.scalar(
                select(func.count()).select_from(ScheduledFollowUp).where(ScheduledFollowUp.title.like("Welcome P%"))
            )
            == CONTACTS
        )
        assert (
            s.scalar(select(func.count()).select_from(ScheduledFollowUp).where(ScheduledFollowUp.title == "Chase"))
            == CONTACTS
        )
        by_status = dict(s.execute(select(RuleExecution.status, func.count()).group_by(RuleExecution.status)).all())
        # The welcome follow-ups become overdue too, but the overdue rule acts once per contact.
        assert by_status == {"applied": 3 * CONTACTS, "skipped": CONTACTS}
        assert s.scalar(select(func.count()).select_from(ContactEvent).where(ContactEvent.processed_at.is_(None))) == 0


def test_threads_on_postgresql_apply_each_rule_once(pg_db: Database, pg_schema: str) -> None:
    _, onboarding = _prepare(pg_db)
    moments = [NOW, NOW + timedelta(days=1), NOW + timedelta(days=2)]
    failures: list[BaseException] = []

    def runner(name: str) -> None:
        try:
            _runner(pg_schema, name, moments)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=runner, args=(f"thread-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    _check(pg_db, onboarding)


def test_processes_on_postgresql_apply_each_rule_once(pg_db: Database, pg_schema: str) -> None:
    _, onboarding = _prepare(pg_db)
    moments = [NOW, NOW + timedelta(days=1), NOW + timedelta(days=2)]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_runner, args=(pg_schema, f"process-{n}", moments)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    _check(pg_db, onboarding)
