"""The calendar and statistics pages in Chromium: FullCalendar draws the events of
the month as bars with their whole titles and the week over all 24 hours, a click
on an event or a day shows it, the year's small months open the day clicked,
plotly draws the statistics charts, and a download button gives the export's
exact bytes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from automations.domain.db import Database
from automations.domain.timeutil import UTC, utcnow
from automations.reports.calendar import day_label, local_midnight
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


def _longest_title_event(frame):
    """The month event whose text is longest (its title wraps over several lines)."""
    texts = frame.locator(".fc-daygrid-event").all_inner_texts()
    return frame.locator(".fc-daygrid-event").nth(max(range(len(texts)), key=lambda i: len(texts[i])))


def test_calendar_week_month_year(page: Page, dashboard: str) -> None:
    page.goto(f"{dashboard}/calendar")
    _ready(page, "Calendar")
    frame = _calendar_frame(page)
    # Month: a day grid with the demo's events, coloured by type, every one a bar.
    expect(frame.locator(".fc-daygrid").first).to_be_visible()
    expect(frame.locator(".fc-event").first).to_be_visible()
    assert frame.locator(".fc-daygrid-event").count() > 3
    assert frame.locator(".fc-daygrid-dot-event").count() == 0
    assert frame.locator(".fc-daygrid-block-event").count() == frame.locator(".fc-daygrid-event").count()
    # Weekday headers as the rest of the page writes them.
    assert frame.locator(".fc-col-header-cell").all_inner_texts()[:2] == ["Mon", "Tue"]
    # A long title is there whole: wrapped, neither cut nor ellipsed, its time whole too.
    longest = _longest_title_event(frame)
    title = longest.locator(".fc-event-title")
    assert title.evaluate("el => el.scrollWidth <= el.clientWidth && el.scrollHeight <= el.clientHeight + 1")
    assert title.evaluate("el => getComputedStyle(el).textOverflow") != "ellipsis"
    assert len(title.inner_text()) > 20 and title.evaluate("el => el.getClientRects().length") >= 1
    assert title.evaluate("el => el.getBoundingClientRect().height") > 20  # more than one line
    assert all(len(t) == 5 and t[2] == ":" for t in frame.locator(".fc-event-time").all_text_contents())
    # The iframe is as tall as the calendar: nothing cut at its bottom.
    assert page.evaluate(
        """() => { const f = document.querySelector('iframe[title*="calendar"]');
                   return f.contentDocument.documentElement.scrollHeight <= f.clientHeight + 2; }"""
    )
    page.screenshot(path=_shot("calendar_month"), full_page=True)

    # A click on an event shows its campaign, contact and content under the calendar,
    # and lists the other steps of its day.
    longest.click()
    expect(page.get_by_text("· campaign").first).to_be_visible()
    expect(page.get_by_text("Planned ").first).to_be_visible()
    expect(page.locator('[data-testid="stTable"]')).to_be_visible()

    # A click in a day cell lists that day's steps.
    cell = frame.locator(".fc-daygrid-day:not(.fc-day-disabled)").filter(has=frame.locator(".fc-event")).last
    day = cell.get_attribute("data-date")
    cell.locator(".fc-daygrid-day-number").click()
    expect(page.get_by_role("heading", name=day_label(date.fromisoformat(day)), exact=True)).to_be_visible()
    expect(page.locator('[data-testid="stTable"]')).to_be_visible()
    expect(page.get_by_role("combobox", name="Day")).to_have_value(day_label(date.fromisoformat(day)))

    # Week: a time grid over the whole day, opened on the working day, scrolled to the night.
    page.get_by_text("Week", exact=True).click()
    _ready(page, "Calendar")
    expect(page.get_by_text("step(s) in this week")).to_be_visible()
    # The view changed: the event and the day chosen in the month are gone, pickers included.
    expect(page.get_by_text("Planned ")).to_have_count(0)
    expect(page.locator('[data-testid="stTable"]')).to_have_count(0)
    expect(page.get_by_role("combobox", name="Day")).to_have_value("")
    expect(page.get_by_role("combobox", name="Event")).to_have_value("")
    frame = _calendar_frame(page)
    expect(frame.locator(".fc-timegrid").first).to_be_visible()
    expect(frame.locator(".fc-timegrid-event").first).to_be_visible()
    late = frame.locator('.fc-timegrid-slot-label[data-time="23:00:00"]')
    expect(frame.locator('.fc-timegrid-slot-label[data-time="00:00:00"]')).to_have_count(1)
    expect(late).not_to_be_in_viewport()
    frame.locator(".fc-timegrid-body").first.hover()
    page.mouse.wheel(0, 5000)
    expect(late).to_be_in_viewport()
    assert late.inner_text().strip() == "23:00"
    page.screenshot(path=_shot("calendar_week"), full_page=True)

    # Year: twelve small months of days with their counts; a click on a day opens its week.
    page.get_by_text("Year", exact=True).click()
    _ready(page, "Calendar")
    months = page.locator('[class*="st-key-cal_ymonth_"]')
    expect(months).to_have_count(12, timeout=20_000)
    expect(months.first.get_by_text("Mon", exact=True)).to_be_visible()
    expect(months.first.get_by_text("Sun", exact=True)).to_be_visible()
    busy = page.locator('[class*="st-key-cal_yday_s4_"] button').first
    expect(busy).to_be_visible()
    page.screenshot(path=_shot("calendar_year"), full_page=True)
    key = busy.locator("xpath=ancestor::*[contains(@class, 'st-key-cal_yday_')][1]").get_attribute("class") or ""
    day = date.fromisoformat(next(c for c in key.split() if c.startswith("st-key-cal_yday_"))[-10:])
    count = int(busy.inner_text().split()[-1])
    busy.click()
    _ready(page, "Calendar")
    expect(page.get_by_text("step(s) in this week")).to_be_visible()
    expect(page.get_by_role("heading", name=day_label(day), exact=True)).to_be_visible()
    expect(page.get_by_text(f"{count} step(s) on {day_label(day)}")).to_be_visible()
    expect(page.locator('[data-testid="stTable"] tbody tr')).to_have_count(count)
    page.locator('[data-testid="stTable"]').scroll_into_view_if_needed()
    page.screenshot(path=_shot("calendar_day"))


def test_statistics_charts_and_download(page: Page, dashboard: str, demo_database: Database) -> None:
    page.goto(f"{dashboard}/statistics")
    _ready(page, "Statistics")
    expect(page.locator(".js-plotly-plot")).to_have_count(6)  # with the engagement funnel
    expect(page.locator(".js-plotly-plot .barlayer").first).to_be_attached()
    expect(page.locator(".js-plotly-plot .funnellayer")).to_have_count(1)
    expect(page.get_by_text("Success rate")).to_be_visible()
    page.screenshot(path=_shot("statistics"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="⬇️ steps", exact=True).click()
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
