"""Engagement on the pages: the Statistics page's funnel (table with rates and their
denominators, plotly funnel, machine-open toggle, clicks per link, the export
button) and each engagement on a contact's timeline and a campaign's page."""

from __future__ import annotations

import json
from datetime import date

from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from tests.pages.conftest import click_row, row_of, texts
from tests.reports.engagement_data import GUIDE, OFFER, build_engagement

STATISTICS = "pages/statistics.py"


def table(at: AppTest, *columns: str, without: str = ""):
    """The one table shown with these columns (and not the column `without`)."""
    [frame] = [
        f.value
        for f in at.dataframe
        if set(columns) <= set(getattr(f.value, "columns", ())) and without not in f.value.columns
    ]
    return frame


def chart(at: AppTest, key: str) -> dict:
    [found] = [c for c in at.get("plotly_chart") if key in c.proto.id]
    return json.loads(found.proto.spec)


def test_statistics_page_shows_the_funnel_the_links_and_counts_machine_opens_on_request(
    app_db: Database, open_page
) -> None:
    build_engagement(app_db)
    at = open_page(STATISTICS)
    at.date_input(key="st_range").set_value((date(2026, 3, 2), date(2026, 3, 8))).run()
    assert not at.exception, at.exception
    funnel = table(at, "template", "delivered", without="step").set_index("template")
    onboarding = funnel.loc["Onboarding"]
    assert (onboarding["sent"], onboarding["delivered"]) == (7, 6)
    assert onboarding["opened"] == "3 of 6 delivered, 50%"
    assert onboarding["click to open"] == "3 of 3 opened, 100%"
    assert onboarding["bounced"] == "1 of 7 sent, 14%"
    assert onboarding["unsubscribed"] == "1 of 6 delivered, 17%"
    assert funnel.loc["No template (own steps)"]["opened"] == "1 of 1 delivered, 100%"
    steps = table(at, "template", "step", "delivered")
    assert list(steps["step"]) == ["1. Welcome", "2. Tips", "1. Note"]
    assert steps.iloc[0]["opened"] == "2 of 4 delivered, 50%"
    shown = chart(at, "st_engagement_chart")["data"][0]
    assert shown["type"] == "funnel"
    assert shown["y"] == ["Sent", "Delivered", "Opened", "Clicked", "Replied"] and shown["x"] == [8, 7, 4, 3, 1]
    links = table(at, "url", "clicks", "recipients")
    assert list(links["url"]) == [OFFER, GUIDE] and list(links["clicks"]) == [3, 1]
    assert list(links["recipients"]) == [1, 1]
    assert "Opens by mail-privacy proxies and link scanners are left out" in texts(at)
    assert any(b.label == "⬇️ engagement" for b in at.get("download_button"))

    at.toggle(key="st_machine_opens").set_value(True).run()
    assert not at.exception, at.exception
    assert table(at, "template", "delivered", without="step").set_index("template").loc["Onboarding"]["opened"] == (
        "4 of 6 delivered, 67%"
    )
    assert chart(at, "st_engagement_chart")["data"][0]["x"] == [8, 7, 5, 3, 1]

    # A range without emails says so.
    at.date_input(key="st_range").set_value((date(2026, 4, 1), date(2026, 4, 2))).run()
    assert "No email was sent in this range." in texts(at)


def test_contact_timeline_shows_the_engagement(app_db: Database, open_page) -> None:
    built = build_engagement(app_db)
    at = open_page("pages/contacts.py")
    at.text_input(key="ct_search").input("ann@example.com").run()
    click_row(at, "ct_list", row_of(at, built.contacts["Ann"], "#"))
    assert not at.exception, at.exception
    [timeline] = [f.value for f in at.dataframe if "what" in f.value.columns and "kind" in f.value.columns]
    engagement = timeline[timeline["kind"] == "engagement"]
    assert list(engagement["status"])[:2] == ["replied", "clicked"]
    first = engagement.iloc[0]
    assert first["what"] == "Replied to “Welcome”: Thanks, this helps! See you Monday"
    assert first["when"] == "2026-03-04 09:00"
    assert f"Clicked {OFFER} in “Tips”" in set(engagement["what"])


def test_campaign_page_shows_the_engagement(app_db: Database, open_page) -> None:
    built = build_engagement(app_db)
    at = open_page("pages/campaigns.py")
    at.session_state["camp_contact"] = built.contacts["Cem"]
    at.run()
    click_row(at, "camp_list", row_of(at, built.campaigns["Cem"]))
    assert not at.exception, at.exception
    steps = next(f.value for f in at.dataframe if "bounced" in f.value.columns)
    assert list(steps["bounced"])[0] == "2026-03-02 10:02" and list(steps["opened"])[0] == ""
    engagement = table(at, "engagement", "what")
    assert list(engagement["what"]) == ["Bounced (hard, 5.1.1): “Welcome”"]
    assert list(engagement["engagement"]) == ["bounced"]
