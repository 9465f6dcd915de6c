"""The calendar and statistics pages in Chromium: FullCalendar draws the events of
the week and the month, plotly the year heatmap and the statistics charts, a click
on an event shows it, and a download button gives the export's exact bytes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from automations.domain.db import Database
from automations.domain.timeutil import UTC, utcnow
from automations.reports.calendar import local_midnight
from automations.reports.exports import ExportFilter, csv_bytes
from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _shot(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")


def _ready(page: Page, title: str) -> None:
    expect(page.get_by_role("heading", name=title).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=20_000)


def _calendar_frame(page: Page):
    return page.frame_locator('iframe[title*="calendar"]').first


def test_calendar_week_month_year(page: Page, dashboard: str) -> None:
    page.goto(f"{dashboard}/calendar")
    _ready(page, "Calendar")
    frame = _calendar_frame(page)
    # Month: a day grid with the demo's events, coloured by type.
    expect(frame.locator(".fc-daygrid").first).to_be_visible()
    expect(frame.locator(".fc-event").first).to_be_visible()
    assert frame.locator(".fc-event").count() > 3
    page.screenshot(path=_shot("calendar_month"), full_page=True)

    # A click on an event shows its campaign, contact and content under the calendar.
    frame.locator(".fc-daygrid-event").first.click()
    expect(page.get_by_text("· campaign").first).to_be_visible()
    expect(page.get_by_text("Planned ").first).to_be_visible()

    # Week: a time grid.
    page.get_by_text("Week", exact=True).click()
    _ready(page, "Calendar")
    expect(page.get_by_text("step(s) in this week")).to_be_visible()
    frame = _calendar_frame(page)
    expect(frame.locator(".fc-timegrid").first).to_be_visible()
    expect(frame.locator(".fc-timegrid-event").first).to_be_visible()
    page.screenshot(path=_shot("calendar_week"), full_page=True)

    # Year: a heatmap of the twelve months and the busiest days.
    page.get_by_text("Year", exact=True).click()
    _ready(page, "Calendar")
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    expect(page.locator(".js-plotly-plot .heatmaplayer").first).to_be_attached()
    expect(page.get_by_text("Busiest days:")).to_be_visible()
    page.screenshot(path=_shot("calendar_year"), full_page=True)


def test_statistics_charts_and_download(page: Page, dashboard: str, demo_database: Database) -> None:
    page.goto(f"{dashboard}/statistics")
    _ready(page, "Statistics")
    expect(page.locator(".js-plotly-plot")).to_have_count(5)
    expect(page.locator(".js-plotly-plot .barlayer").first).to_be_attached()
    expect(page.get_by_text("Success rate")).to_be_visible()
    page.screenshot(path=_shot("statistics"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="steps").click()
    download = download_info.value
    assert download.suggested_filename.startswith("steps_")
    data = Path(download.path()).read_bytes()
    today = utcnow().astimezone(UTC).date()
    filters = ExportFilter(
        start=local_midnight(today - timedelta(days=29), UTC), end=local_midnight(today + timedelta(days=1), UTC)
    )
    with demo_database.read_session() as s:
        assert data == csv_bytes(s, "steps", filters)
    assert data.count(b"\n") > 10
