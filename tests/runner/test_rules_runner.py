"""The runner applies follow-up rules on its ticks: `python runner.py --once`, and a
campaign completed by a tick triggering its rule in that same tick."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    AutomationTemplate,
    RuleExecution,
    ScheduledFollowUp,
)
from automations.domain.timeutil import utcnow
from automations.runner.engine import Runner
from automations.services import campaigns, contacts, rules
from automations.services.seed import seed_system_templates
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parents[2]


def test_runner_once_applies_rules_exactly_once(tmp_path: Path, sqlite_db: Database) -> None:
    db = sqlite_db
    now = utcnow()
    with db.session() as s:
        seed_system_templates(s)
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
            now=now - timedelta(days=1),
        )
        rules.create_rule(
            s,
            {
                "name": "Welcome call",
                "trigger": "contact_created",
                "action": "create_followup",
                "action_config": {"title": "Call {{ contact.first_name }}"},
            },
            now=now - timedelta(days=1),
        )
        contact_id = contacts.create_contact(
            s, {"first_name": "Ann", "email": "ann@example.com", "tags": ["trial"]}, now=now - timedelta(minutes=5)
        ).id
    env = {**os.environ, "AUTOMATIONS_DATABASE_URL": db.url, "AUTOMATIONS_OUTBOX_DIR": str(tmp_path / "box")}
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "runner.py", "--once"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stderr)
    assert "rules: " in outputs[0] and "rules: " not in outputs[1]  # the second run had nothing to do
    with db.read_session() as s:
        started = s.scalars(select(AutomationCampaign).where(AutomationCampaign.contact_id == contact_id)).all()
        assert [(c.name, c.template_id) for c in started] == [("Customer Onboarding", onboarding)]
        titles = s.scalars(select(ScheduledFollowUp.title).where(ScheduledFollowUp.rule_id.is_not(None))).all()
        assert titles == ["Call Ann"]
        assert s.scalar(select(func.count()).select_from(RuleExecution)) == 2


def test_a_campaign_completed_in_a_tick_fires_its_rule_in_that_tick(sqlite_db: Database) -> None:
    db = sqlite_db
    with db.session() as s:
        rules.create_rule(
            s,
            {
                "name": "Debrief",
                "trigger": "campaign_completed",
                "action": "create_followup",
                "action_config": {"title": "Debrief {{ contact.first_name }}"},
            },
            now=NOW - timedelta(days=1),
        )
        contact_id = contacts.create_contact(s, {"first_name": "Bob", "email": "bob@example.com"}, now=NOW).id
        campaigns.create_campaign(
            s,
            {
                "name": "One task",
                "contact_id": contact_id,
                "steps": [{"name": "t", "message_type": "task", "subject": "Do it"}],
            },
            now=NOW - timedelta(hours=1),
        )
    runner = Runner(db, Settings(_env_file=None), rng=random.Random(1))
    try:
        summary = runner.tick(NOW)
    finally:
        runner.close()
    assert summary.errors == [] and summary.executed == 1
    with db.read_session() as s:
        titles = s.scalars(select(ScheduledFollowUp.title).where(ScheduledFollowUp.rule_id.is_not(None))).all()
    assert titles == ["Debrief Bob"]
