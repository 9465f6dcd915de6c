"""The statistics page: the figures of a known database, filters applying to every
figure and chart, the charts and the export buttons."""

from __future__ import annotations

from datetime import date

from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.reports.exports import EXPORT_KINDS
from tests.reports.calendar_data import build_known

PAGE = "pages/statistics.py"


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


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
    assert shown["Active campaigns"] == "1" and shown["Canceled campaigns"] == "1"
    charts = at.get("plotly_chart")
    assert len(charts) == 5
    buttons = at.get("download_button")
    assert len(buttons) == len(EXPORT_KINDS)

    at.selectbox(key="st_template").set_value(built.template_id).run()
    shown = metrics(at)
    assert shown["Sent"] == "2" and shown["Canceled campaigns"] == "0"
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


def test_empty_database_says_what_to_do(app_db: Database, open_page) -> None:
    at = open_page(PAGE)
    assert "No campaign activity in this range" in "\n".join(i.value for i in at.info)
    assert metrics(at)["Success rate"] == "–"
