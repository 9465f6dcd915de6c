"""The Overview tells apart steps due now, steps waiting on a pause and steps held
by a silent runner, and says whether anything is executing the due ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.domain.models import AutomationCampaign, Contact
from automations.domain.timeutil import utcnow
from automations.runner.heartbeat import beat
from automations.services.campaigns import create_campaign, pause_campaign
from tests.pages.conftest import click_row

Open = Callable[[str | None], AppTest]


def _campaign(db: Database, contact_id: int, started: timedelta) -> int:
    with db.session() as s:
        return create_campaign(
            s,
            {
                "name": "Past due",
                "contact_id": contact_id,
                "start_at": utcnow() - started,
                "steps": [
                    {"name": "Hello", "message_type": "task", "subject": "Call"},
                    {"name": "Again", "message_type": "task", "subject": "Call again", "delay_hours": 1},
                ],
            },
            now=utcnow() - started,
        ).id


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_overdue_steps_of_paused_campaigns_are_not_said_to_be_executing(app_db: Database, open_page: Open) -> None:
    with app_db.session() as s:
        contact = Contact(first_name="Ada", email="ada@example.com")
        s.add(contact)
        s.flush()
        contact_id = contact.id
    paused = _campaign(app_db, contact_id, timedelta(hours=3))
    with app_db.session() as s:
        pause_campaign(s, paused)
    _campaign(app_db, contact_id, timedelta(hours=2))

    at = open_page(None)
    figures = _metrics(at)
    assert figures["Due now"] == "2"
    assert figures["Waiting on paused campaigns"] == "2"
    assert figures["Held by a silent runner"] == "0"
    # No runner has ticked: the due steps are said not to be executing.
    assert "Not being executed: no runner is running." in [c.value for c in at.caption]

    with app_db.session() as s:
        beat(s, "runner-a", utcnow(), started_at=utcnow())
    at.run()
    assert "Being executed by the running runner, oldest first." in [c.value for c in at.caption]


def test_a_click_on_a_next_step_opens_its_campaign(demo_db: Database, open_page: Open) -> None:
    at = open_page(None)
    campaign = at.dataframe[0].value["campaign"].iloc[0]
    click_row(at, "ov_scheduled", 0)
    assert not at.exception, at.exception
    opened = at.session_state["camp_open"]
    assert campaign in [h.value for h in at.subheader]  # the Campaigns page, with that campaign open
    with demo_db.read_session() as s:
        assert s.get(AutomationCampaign, opened).name == campaign
