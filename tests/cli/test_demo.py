"""`python -m automations demo`: a first look at the dashboard is not empty."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from automations.cli.demo import fill_demo
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.errors import Conflict
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    EngagementEvent,
    ScheduledFollowUp,
    StepAttempt,
)
from automations.services import campaigns
from tests.conftest import NOW
from tests.domain.test_migrations import REPO


def test_demo_fills_every_status_consistently(db):
    summary = fill_demo(db, contacts=60, now=NOW)
    assert summary.contacts == 60
    with db.read_session() as s:
        statuses = dict(
            s.execute(select(AutomationCampaign.status, func.count()).group_by(AutomationCampaign.status)).all()
        )
        step_statuses = dict(
            s.execute(select(AutomationStep.status, func.count()).group_by(AutomationStep.status)).all()
        )
        assert set(statuses) == {"active", "paused", "completed", "canceled"}
        assert {"pending", "sent", "done", "failed", "skipped", "canceled"} <= set(step_statuses)
        assert sum(step_statuses.values()) == summary.steps
        # executed steps are in the past, pending ones of active campaigns in the future
        assert s.scalar(select(func.count()).select_from(AutomationStep).where(AutomationStep.executed_at > NOW)) == 0
        assert (
            s.scalar(
                select(func.count())
                .select_from(AutomationStep)
                .join(AutomationCampaign)
                .where(
                    AutomationCampaign.status == "active",
                    AutomationStep.status == "pending",
                    AutomationStep.scheduled_at < NOW,
                )
            )
            == 0
        )
        # every executed step has its attempts; follow-ups exist, some pending
        assert s.scalar(select(func.count()).select_from(StepAttempt)) == summary.attempts >= 1
        assert (
            s.scalar(select(func.count()).select_from(ScheduledFollowUp).where(ScheduledFollowUp.status == "pending"))
            >= 1
        )
        rows, total = campaigns.list_campaigns(s, campaigns.CampaignFilter(status="completed"), limit=5)
        assert total == statuses["completed"] and all(r.progress == 1.0 for r in rows)


def test_demo_refuses_a_database_with_contacts(sqlite_db):
    fill_demo(sqlite_db, contacts=3, now=NOW)
    with pytest.raises(Conflict):
        fill_demo(sqlite_db, contacts=3, now=NOW)
    assert fill_demo(sqlite_db, contacts=3, now=NOW, force=True).contacts == 3


def test_the_database_takes_new_rows_after_the_demo(db):
    from automations.services import contacts

    fill_demo(db, contacts=5, now=NOW)
    with db.session() as s:
        campaign = campaigns.create_campaign(
            s,
            {
                "name": "After demo",
                "contact_id": contacts.create_contact(s, {"first_name": "New"}).id,
                "steps": [{"name": "Call", "message_type": "task", "subject": "Call"}],
            },
            now=NOW,
        )
    assert campaign.id > 5 and campaign.steps[0].id > 5


def test_demo_command_prepares_a_new_database(tmp_path):
    """`python -m automations demo` as the very first command: migrated, seeded, filled."""
    url = f"sqlite:///{tmp_path}/new.db"
    result = subprocess.run(
        [sys.executable, "-m", "automations", "demo", "--contacts", "20"],
        cwd=REPO,
        env={**os.environ, "AUTOMATIONS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    db = Database(url, settings=Settings(_env_file=None))
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(AutomationCampaign)) > 0
        assert (
            s.scalar(
                select(func.count()).select_from(AutomationTemplate).where(AutomationTemplate.system_key.is_not(None))
            )
            == 6
        )
    db.dispose()


def test_demo_recipients_open_click_and_reply_so_the_funnel_is_not_empty(db):
    from automations.reports.engagement import email_funnel
    from automations.reports.stats import StatsFilter

    summary = fill_demo(db, contacts=150, now=NOW)
    assert summary.engagements > 0
    with db.read_session() as s:
        kinds = dict(
            s.execute(
                select(EngagementEvent.kind, func.count())
                .where(EngagementEvent.machine.is_(False))
                .group_by(EngagementEvent.kind)
            ).all()
        )
        assert {"open", "click", "reply"} <= set(kinds)
        machine = s.scalar(select(func.count()).where(EngagementEvent.machine.is_(True)))
        assert machine and machine > 0  # a privacy proxy's opens, kept out of open rates
        assert s.scalar(select(func.count()).where(EngagementEvent.occurred_at > NOW)) == 0
        # Every person's open and click set the step's first open and click, and only email that went out.
        opened = s.scalar(select(func.count()).where(AutomationStep.opened_at.is_not(None)))
        assert opened == kinds["open"]
        assert s.scalar(select(func.count()).where(AutomationStep.clicked_at.is_not(None))) == kinds["click"]
        assert (
            s.scalar(
                select(func.count()).where(
                    AutomationStep.opened_at.is_not(None),
                    (AutomationStep.message_type != "email") | (AutomationStep.status != "sent"),
                )
            )
            == 0
        )
        # A reply stopped its campaign (stop_on_reply).
        replied = s.execute(
            select(AutomationCampaign.status).join(AutomationStep).where(AutomationStep.replied_at.is_not(None))
        ).scalars()
        assert set(replied) == {"canceled"}
        funnel = email_funnel(s, StatsFilter())
        assert sum(row.opened for row in funnel) == opened and sum(row.replied for row in funnel) == kinds["reply"]
