"""The dashboard in a real browser: the New Campaign flow through the steps editor,
a CSV import with bad rows, and a screenshot of every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from automations.domain.db import Database
from automations.domain.models import AutomationCampaign, Contact
from tests.browser.conftest import ROOT, SCREENSHOTS, stop_process

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = {
    "": "Overview",
    "campaigns": "Campaigns",
    "new_campaign": "New Campaign",
    "templates": "Templates",
    "followups": "Follow-ups",
    "contacts": "Contacts",
    "settings": "Settings",
    # Pages that ship separately, shown when they are there.
    "calendar": "Calendar",
    "statistics": "Statistics",
    "rules": "Rules",
}


def _ready(page: Page, title: str) -> None:
    expect(page.get_by_role("heading", name=title).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=20_000)
    expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=20_000)
    page.wait_for_timeout(700)  # let the grids draw before a screenshot


def _settled(page: Page) -> None:
    """Wait until the app has finished its rerun (no running indicator), then a moment for the grid to draw."""
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=20_000)
    page.wait_for_timeout(800)


def test_new_campaign_end_to_end(page: Page, dashboard: str, demo_database: Database) -> None:
    with demo_database.read_session() as s:
        contact = s.scalars(select(Contact).order_by(Contact.id)).first()
        email, contact_id, first_name = contact.email, contact.id, contact.first_name
    page.goto(f"{dashboard}/new_campaign")
    _ready(page, "New Campaign")
    page.get_by_label("Campaign name").fill("Browser welcome")
    page.get_by_label("Find contact").fill(email)
    page.get_by_label("Find contact").press("Enter")
    page.get_by_role("combobox", name="Contact").click()
    page.get_by_role("option", name=email).click()
    page.get_by_role("combobox", name="Start from a template (optional)").click()
    page.get_by_role("option", name="Lead Nurture").first.click()
    expect(page.locator('[data-testid="stExpander"]', has_text="Welcome email")).to_have_count(1)

    # Rename the first step in the data editor (a canvas: double-click the name cell,
    # then type into the cell editor it opens). The grid redraws after each rerun, so a
    # double-click that lands mid-redraw opens no editor and is tried again.
    renamed = page.locator('[data-testid="stExpander"]', has_text="Warm welcome")
    cell_editor = page.locator("textarea.gdg-input")
    for _ in range(5):
        grid = page.locator('[data-testid="stDataFrame"]').first
        grid.scroll_into_view_if_needed()
        _settled(page)
        box = grid.bounding_box()
        assert box is not None
        page.mouse.dblclick(box["x"] + 200, box["y"] + 35 + 17)
        try:
            expect(cell_editor).to_be_visible(timeout=5_000)
        except AssertionError:
            page.keyboard.press("Escape")
            continue
        cell_editor.fill("Warm welcome")
        cell_editor.press("Enter")
        try:
            expect(renamed).to_have_count(1, timeout=15_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    expect(renamed).to_have_count(1)

    # Add an SMS step: only the text field applies to it.
    page.get_by_role("button", name="Add SMS").click()
    expect(page.locator('[data-testid="stExpander"]', has_text="SMS 2")).to_have_count(1)
    expect(page.get_by_text("The preview appears once every step is complete.")).to_be_visible()
    page.get_by_label("Text message").last.fill("See you soon, {{ contact.first_name }}!")
    page.get_by_label("Text message").last.press("Control+Enter")
    expect(page.get_by_text(f"content for {first_name}", exact=False)).to_be_visible()

    page.screenshot(path=str(_shot("new_campaign_filled")), full_page=True)
    page.get_by_role("button", name="Save and activate").click()
    expect(page.get_by_text("1 campaign(s) created")).to_be_visible()
    with demo_database.read_session() as s:
        campaign = s.scalars(select(AutomationCampaign).where(AutomationCampaign.name == "Browser welcome")).one()
        assert campaign.contact_id == contact_id and campaign.status == "active"
        names = [step.name for step in campaign.steps]
        assert names[0] == "Warm welcome" and names[-1] == "SMS 2" and len(names) == 7
        assert campaign.steps[-1].body == "See you soon, {{ contact.first_name }}!"
    assert first_name


def test_contacts_import_reports_bad_rows(page: Page, dashboard: str, demo_database: Database, tmp_path: Path) -> None:
    """A file as Excel in Europe saves it: Windows-1252, semicolons, CRLF."""
    csv_file = tmp_path / "people.csv"
    csv_file.write_bytes(
        (
            "first_name;last_name;email;phone\r\n"
            "Imported;Müller;imported.one@example.com;+14155550199\r\n"
            ";Nameless;nameless@example.com;\r\n"
            "Imported;Two;not-an-email;\r\n"
            "Imported;Ørsted;;\r\n"
        ).encode("cp1252")
    )
    page.goto(f"{dashboard}/contacts")
    _ready(page, "Contacts")
    page.get_by_role("tab", name="Import CSV").click()
    page.locator('input[type="file"]').set_input_files(str(csv_file))
    expect(page.get_by_text("semicolon-separated: 4 rows; 2 are valid and 2 have problems.")).to_be_visible()
    expect(page.get_by_text("cp1252", exact=True)).to_be_visible()
    page.screenshot(path=str(_shot("contacts_import_preview")), full_page=True)
    page.get_by_role("button", name="Import the valid rows of 4").click()
    expect(page.get_by_text("Imported 2 contacts.")).to_be_visible()
    with demo_database.read_session() as s:
        imported = s.scalars(select(Contact.last_name).where(Contact.first_name == "Imported")).all()
    assert sorted(imported) == ["Müller", "Ørsted"]


def _shot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


def test_screenshot_of_every_page(page: Page, dashboard: str) -> None:
    """Written to test-artifacts/screenshots/ for a person to look at."""
    shown = []
    for path, title in PAGES.items():
        if path in ("calendar", "statistics", "rules") and not (ROOT / "pages" / f"{path}.py").exists():
            continue
        page.goto(f"{dashboard}/{path}")
        _ready(page, title)
        expect(page.locator('[data-testid="stException"]')).to_have_count(0)
        page.screenshot(path=str(_shot(path or "overview")), full_page=True)
        shown.append(title)
    assert {"Overview", "Campaigns", "New Campaign", "Contacts"} <= set(shown)


def test_a_bookmarked_page_opened_first_shows_the_app_navigation(
    page: Page, demo_database: Database, tmp_path: Path
) -> None:
    """The first visit to a new server process by a page's URL (a bookmark) gets the
    app's navigation and layout, never Streamlit's file list of `pages/`."""
    from tests.browser.conftest import start_dashboard

    process, url = start_dashboard(demo_database.url, tmp_path / "streamlit.log")
    try:
        page.goto(f"{url}/settings")
        _ready(page, "Settings")
        nav = page.locator('[data-testid="stSidebarNav"]')
        expect(nav.get_by_text("New Campaign", exact=True)).to_be_visible()
        expect(nav.get_by_text("steps editor")).to_have_count(0)
        expect(nav.get_by_text("common", exact=True)).to_have_count(0)
        expect(page.get_by_text("Deploy", exact=True)).to_have_count(0)
    finally:
        stop_process(process)


def test_before_sign_in_only_the_form_exists_and_wrong_passwords_slow_down(
    page: Page, demo_database: Database, tmp_path: Path
) -> None:
    from tests.browser.conftest import start_dashboard

    process, url = start_dashboard(demo_database.url, tmp_path / "streamlit.log", {"AUTOMATIONS_UI_PASSWORD": "pw"})
    try:
        for path in ("common", "steps_editor", "campaigns"):  # old helper URLs, then a page
            page.goto(f"{url}/{path}")
            expect(page.get_by_label("Password", exact=True)).to_be_visible()
            expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
            expect(page.get_by_text("Lovelace")).to_have_count(0)
        _settled(page)
        password = page.get_by_label("Password", exact=True)
        sign_in = page.get_by_role("button", name="Sign in")
        password.fill("guess")
        sign_in.click()
        expect(page.get_by_text("Wrong password. Wait 1 s before the next try.")).to_be_visible()
        # Keep guessing: each counted failure doubles the wait (a refused try does not count).
        for _ in range(40):
            if page.get_by_text("Wait 8 s before the next try.").count():
                break
            _settled(page)
            page.wait_for_timeout(300)
            password.fill("guess")
            sign_in.click()
            _settled(page)
        expect(page.get_by_text("Wrong password. Wait 8 s before the next try.")).to_be_visible()
        password.fill("pw")
        sign_in.click()
        expect(page.get_by_text("Too many wrong passwords: wait", exact=False)).to_be_visible()
        _settled(page)
        page.wait_for_timeout(8500)
        password.fill("pw")
        sign_in.click()
        _ready(page, "Campaigns")  # the page the bookmark asked for
        expect(page.locator('[data-testid="stSidebarNav"]').get_by_text("Overview", exact=True)).to_be_visible()
    finally:
        stop_process(process)
    log = (tmp_path / "streamlit.log").read_text()
    assert "wrong dashboard password from" in log and "guess" not in log
