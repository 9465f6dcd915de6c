"""The statistics page: the figures of a known database, filters applying to every
figure and chart, what the figures count and mean, the charts and the export buttons."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.domain.models import AutomationTemplate
from automations.domain.timeutil import utcnow
from automations.reports.exports import EXPORT_KINDS
from automations.services.campaigns import create_campaign
from automations.services.contacts import create_contact
from tests.pages.conftest import texts
from tests.reports.calendar_data import T0, add_campaign, add_contact, build_known

PAGE = "pages/statistics.py"
ACTIVE = "Active"


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def helps(at: AppTest) -> dict[str, str]:
    return {m.label: m.help for m in at.metric}


def figure(at: AppTest, key: str) -> dict:
    [chart] = [c for c in at.get("plotly_chart") if key in c.proto.id]
    return json.loads(chart.proto.spec)


def test_figures_filters_charts_and_exports(app_db: Database, open_page) -> None:
    built = build_known(app_db)
    at = open_page(PAGE)
    at.date_input(key="st_range").set_value((date(2026, 2, 27), date(2026, 3, 12))).run()
    assert not at.exception, at.exception
    shown = metrics(at)
    assert shown["Sent"] == "3" and shown["Failed"] == "1" and shown["Done (tasks)"] == "1"
    assert shown["Skipped"] == "1" and shown["Pending"] == "1"
    assert shown["Success rate"] == "80.0%" and shown["Completion rate"] == "50.0%"
    # Both pending follow-ups (due 1 and 7 March 2026) are due before the real now.
    assert shown["p95 lag"] == "10.0 min" and shown["Pending follow-ups"] == "2"
    assert shown[ACTIVE] == "1" and shown["Canceled"] == "1"
    charts = at.get("plotly_chart")
    assert len(charts) == 6  # the five charts and the email engagement funnel
    buttons = at.get("download_button")
    assert len(buttons) == len(EXPORT_KINDS)

    at.selectbox(key="st_template").set_value(built.template_id).run()
    shown = metrics(at)
    assert shown["Sent"] == "2" and shown["Canceled"] == "0"
    at.multiselect(key="st_types").set_value(["sms"]).run()
    shown = metrics(at)
    assert shown["Sent"] == "0" and shown["Failed"] == "1" and shown["Success rate"] == "0.0%"

    # One day only: 2 March, when A1 and B1 ran.
    at.selectbox(key="st_template").set_value(None).run()
    at.multiselect(key="st_types").set_value([]).run()
    at.date_input(key="st_range").set_value((date(2026, 3, 2), date(2026, 3, 2))).run()
    shown = metrics(at)
    assert shown["Sent"] == "2" and shown["Average lag"] == "40 s"
    assert not at.exception, at.exception


def test_lag_is_shown_as_median_p95_longest_and_average_with_what_they_mean(app_db: Database, open_page) -> None:
    # Lags of the six steps that ran: 0, 5, 20, 60, 180 and 600 s.
    build_known(app_db)
    at = open_page(PAGE)
    at.date_input(key="st_range").set_value((date(2026, 2, 27), date(2026, 3, 12))).run()
    shown = metrics(at)
    assert shown["Median lag (p50)"] == "20 s"  # the 3rd of 6, nearest rank
    assert shown["p95 lag"] == "10.0 min" and shown["Longest lag"] == "10.0 min"
    assert shown["Average lag"] == "2.4 min" and shown["Steps that ran"] == "6"
    explained = helps(at)
    assert "How long after its planned time a step ran" in explained["Median lag (p50)"]
    assert "Half of the steps ran within 20 s" in explained["Median lag (p50)"]
    assert "95 % of the steps ran within 10.0 min" in explained["p95 lag"]
    assert "pull it up" in explained["Average lag"] and "runner was stopped" in explained["Average lag"]
    said = texts(at)
    assert "Half of the steps ran within 20 s of their planned time and 95 % within 10.0 min" in said
    assert "the latest ran 10.0 min late" in said and "pulled up" not in said  # the average is below the p95


def test_an_average_above_the_p95_is_explained(app_db: Database, open_page) -> None:
    # Forty steps on time or nearly, and one four hours late (the runner was down).
    with app_db.session() as s:
        who = add_contact(s, "Pat")
        steps = [{"at": T0, "status": "sent", "executed_at": T0 + timedelta(seconds=i % 3)} for i in range(40)]
        steps.append({"at": T0, "status": "sent", "executed_at": T0 + timedelta(hours=4)})
        add_campaign(s, "Lags", who, steps)
    at = open_page(PAGE)
    at.date_input(key="st_range").set_value((date(2026, 3, 2), date(2026, 3, 2))).run()
    shown = metrics(at)
    assert shown["Median lag (p50)"] == "1 s" and shown["p95 lag"] == "2 s"
    assert shown["Average lag"] == "5.9 min" and shown["Longest lag"] == "4.0 h"
    assert "The average (5.9 min) is pulled up by a few late steps" in texts(at)


def test_campaign_counts_say_they_count_the_range_only(app_db: Database, open_page) -> None:
    build_known(app_db)
    at = open_page(PAGE)
    explained = helps(at)
    assert "started in this range" in explained[ACTIVE]
    assert "The Overview counts every active campaign" in explained[ACTIVE]
    assert "Campaigns that started in this range" in texts(at)


def test_funnel_numbers_steps_from_one(app_db: Database, open_page) -> None:
    # A campaign made from a template by the service: its steps' positions count from 0.
    with app_db.session() as s:
        contact = create_contact(s, {"first_name": "Ada", "email": "ada@example.com", "phone": "+14155550100"})
        template = s.scalars(select(AutomationTemplate).order_by(AutomationTemplate.id)).first()
        assert template is not None
        steps = len(template.steps)
        create_campaign(
            s,
            {"name": "Funnel", "contact_id": contact.id, "template_id": template.id},
            now=utcnow() - timedelta(hours=1),
        )
    at = open_page(PAGE)
    assert not at.exception, at.exception
    funnel = figure(at, "st_funnel")
    assert funnel["data"][0]["x"] == list(range(1, steps + 1))
    assert funnel["layout"]["xaxis"]["title"]["text"] == "Step"
    assert funnel["data"][0]["hovertemplate"].startswith("Step %{x}")


def test_empty_database_says_what_to_do(app_db: Database, open_page) -> None:
    at = open_page(PAGE)
    assert "No campaign activity in this range" in "\n".join(i.value for i in at.info)
    assert metrics(at)["Success rate"] == "–"
    assert metrics(at)["Median lag (p50)"] == "–"
