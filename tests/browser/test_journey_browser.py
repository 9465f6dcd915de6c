"""A new user's first session in Chromium, on a demo database: every page of the
navigation, opening a row of each list and reaching its last page, cloning a system
template, the campaign builder's checks and its fresh form after a save, and a rule
the runner applies while the contact is on screen.

After every action the page must have finished its rerun without an exception.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import func, select

from automations.cli.demo import fill_demo
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import AutomationCampaign, AutomationTemplate, Contact
from automations.domain.timeutil import utcnow
from automations.services.contacts import create_contact
from automations.services.followups import list_followups
from automations.services.rules import create_rule
from automations.services.templates import list_templates
from tests.browser.conftest import start_dashboard, stop_process
from tests.runner.support import start_runner, stop_all

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCEPTION = '[data-testid="stException"]'
ERROR_ID = "stAlertContentError"  # the text of an `st.error`
ERROR = f'[data-testid="{ERROR_ID}"]'
GRID = '[data-testid="stDataFrame"]'
# The geometry of Streamlit's data grids: a 35 px header, 35 px rows, and (in a list
# you can select a row of) the row's checkbox at the far left.
HEADER, ROW, CHECKBOX_X = 35, 35, 18
PAGE_SIZE = 50  # rows per page of every list until the user picks another size

PAGES = {
    "Overview": ("", "Overview"),
    "Campaigns": ("campaigns", "Campaigns"),
    "New Campaign": ("new_campaign", "New Campaign"),
    "Templates": ("templates", "Templates"),
    "Calendar": ("calendar", "Calendar"),
    "Statistics": ("statistics", "Statistics"),
    "Rules": ("rules", "Follow-up rules"),
    "Follow-ups": ("followups", "Follow-ups"),
    "Contacts": ("contacts", "Contacts"),
    "Settings": ("settings", "Settings"),
}


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory, _migrated_sqlite_file: Path) -> Iterator[Database]:
    """A demo as `python -m automations demo` makes it, large enough for every list
    (campaigns, contacts, overdue follow-ups) to have more than one page."""
    path = tmp_path_factory.mktemp("journey") / "demo.db"
    path.write_bytes(_migrated_sqlite_file.read_bytes())
    db = Database(f"sqlite:///{path}", settings=Settings(_env_file=None))
    fill_demo(db, contacts=300, seed=5)
    yield db
    db.dispose()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A tall window: Streamlit scrolls inside its own container, so a full-page
    screenshot shows only what fits in the window."""
    context = browser.new_context(viewport={"width": 1400, "height": 3000}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


# --- helpers -------------------------------------------------------------------


def settle(page: Page) -> None:
    """Wait until the rerun has finished and the grids have drawn; no action may end
    in an exception on the page."""
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=20_000)
    page.wait_for_timeout(600)
    exceptions = page.locator(EXCEPTION)
    assert exceptions.count() == 0, f"exception on {page.url}: {exceptions.first.inner_text()[:1500]}"


def open_page(page: Page, base: str, path: str, heading: str) -> None:
    page.goto(f"{base}/{path}")
    expect(page.get_by_role("heading", name=heading).first).to_be_visible()
    settle(page)


def shot(page: Page, name: str) -> str:
    path = f"/tmp/journey-{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def grid_cell(grid: Locator, text: str) -> Locator:
    """A cell of a data grid by its text. The grid draws on a canvas; its cells are
    also in a table for screen readers, which is out of sight (so not found by role)."""
    return grid.locator("td", has_text=re.compile(rf"^{re.escape(text)}$"))


def click_row(page: Page, grid: Locator, row: int, opened: Locator) -> None:
    """Select `row` (0 = the first) of a list by its checkbox until `opened` shows.
    The grid redraws after each rerun (and on its own in a live list), so a click
    that lands mid-redraw selects nothing and is tried again."""
    for _ in range(5):
        settle(page)
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + CHECKBOX_X, box["y"] + HEADER + ROW * row + ROW / 2)
        try:
            expect(opened).to_be_visible(timeout=5_000)
            break
        except AssertionError:
            continue
    expect(opened).to_be_visible()
    settle(page)


def edit_cell(page: Page, grid: Locator, row: int, column: int, text: str) -> None:
    """Type `text` into a cell of a data editor: select the row's first text cell
    (`name`, 200 px in), move to `column` (1 = the first) with the arrow keys, open
    the cell's editor with Enter, type, Enter."""
    editor = page.locator("input.gdg-input, textarea.gdg-input")
    selected = grid.locator(f'td[aria-selected="true"][aria-colindex="{column}"]')
    for _ in range(5):
        settle(page)
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + 200, box["y"] + HEADER + ROW * row + ROW / 2)
        name_column = 2
        for _ in range(abs(column - name_column)):
            page.keyboard.press("ArrowRight" if column > name_column else "ArrowLeft")
        try:
            expect(selected).to_have_count(1, timeout=3_000)
        except AssertionError:
            page.keyboard.press("Escape")
            continue
        page.keyboard.press("Enter")
        try:
            expect(editor).to_be_visible(timeout=3_000)
        except AssertionError:
            page.keyboard.press("Escape")
            continue
        editor.fill(text)
        editor.press("Enter")
        settle(page)
        return
    pytest.fail(f"could not open the editor of cell ({row}, {column}); see {shot(page, 'edit-cell')}")


def error_after(field: Locator) -> Locator:
    """The first error shown after `field` on the page (a field's problem is drawn under it)."""
    return field.locator(f"xpath=following::*[@data-testid='{ERROR_ID}'][1]")


def choose(page: Page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).first.click()
    settle(page)


def campaign_count(db: Database) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(AutomationCampaign)) or 0


def contact_count(db: Database) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(Contact)) or 0


def overdue_count(db: Database) -> int:
    """The follow-ups the page lists as overdue (it counts to the minute)."""
    now = utcnow().replace(second=0, microsecond=0)
    with db.read_session() as s:
        return list_followups(s, due_before=now, limit=1)[1]


# --- 1. every page -------------------------------------------------------------


def test_every_page_of_the_navigation_opens_without_an_exception(page: Page, dashboard: str) -> None:
    open_page(page, dashboard, "", "Overview")
    nav = page.locator('[data-testid="stSidebarNav"]')
    for title, (path, heading) in PAGES.items():
        nav.get_by_text(title, exact=True).click()
        expect(page).to_have_url(re.compile(rf"/{re.escape(path)}$"))
        expect(page.get_by_role("heading", name=heading).first).to_be_visible()
        settle(page)
    # The same pages opened by their address (a bookmark, a reload).
    for path, heading in PAGES.values():
        open_page(page, dashboard, path, heading)


# --- 2. cloning a system template ----------------------------------------------


def test_a_cloned_template_shows_at_once(page: Page, dashboard: str, demo_database: Database) -> None:
    with demo_database.read_session() as s:
        first = list_templates(s)[0]
    assert first.is_system
    copy_name = f"{first.name} (copy)"
    open_page(page, dashboard, "templates", "Templates")
    grid = page.locator(GRID).first
    click_row(page, grid, 0, page.get_by_role("heading", name=first.name, exact=True))
    expect(page.get_by_text("System template (read-only: clone it to change it)", exact=False)).to_be_visible()

    page.get_by_role("button", name="Clone").click()
    settle(page)
    expect(page.get_by_role("heading", name=copy_name, exact=True)).to_be_visible(timeout=5_000)
    expect(grid_cell(page.locator(GRID).first, copy_name)).to_have_count(1, timeout=5_000)
    expect(page.get_by_text("Custom template", exact=False).first).to_be_visible()
    with demo_database.read_session() as s:
        assert s.scalar(select(AutomationTemplate.is_system).where(AutomationTemplate.name == copy_name)) is False


# --- 3. a rule started by the contact's edit, applied by a real runner ---------


def test_a_rule_started_campaign_appears_on_the_timeline_without_a_reload(
    page: Page, tmp_path: Path, _migrated_sqlite_file: Path
) -> None:
    path = tmp_path / "rules.db"
    path.write_bytes(_migrated_sqlite_file.read_bytes())
    db = Database(f"sqlite:///{path}", settings=Settings(_env_file=None))
    fill_demo(db, contacts=20, seed=3)
    with db.session() as s:
        template = list_templates(s)[0]
        create_rule(
            s,
            {
                "name": "Trial starts onboarding",
                "trigger": "tag_added",
                "trigger_config": {"tag": "trial"},
                "action": "start_campaign",
                "action_config": {"template_id": template.id},
            },
        )
        contact = create_contact(s, {"first_name": "Tess", "last_name": "Trialist", "email": "tess@trial.example"})
        name, email = contact.full_name, contact.email
    server, url = start_dashboard(db.url, tmp_path / "streamlit.log")
    runner = start_runner(db.url, tmp_path, "journey", "--interval", "1")
    try:
        open_page(page, url, "contacts", "Contacts")
        search = page.get_by_role("textbox", name="Search")
        search.fill(email)
        search.press("Enter")
        settle(page)
        click_row(page, page.locator(GRID).first, 0, page.get_by_role("heading", name=name, exact=True))
        expect(page.get_by_text("No campaign or follow-up yet.", exact=False)).to_be_visible()

        page.get_by_role("tab", name="Edit").click()
        settle(page)
        # The Add contact tab has the same form, out of sight.
        page.get_by_label("Tags (comma separated)").filter(visible=True).fill("trial")
        started = time.monotonic()
        page.get_by_role("button", name="Save contact").filter(visible=True).click()
        expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=5_000)  # saved
        page.get_by_role("tab", name="Timeline").click()
        step = grid_cell(page.locator(GRID), template.name)
        left = max(5.0 - (time.monotonic() - started), 0.1)
        try:
            # `wait_for` watches the page as it changes (an `expect` polls at up to 1 s
            # intervals, which would eat into the 5 s).
            step.first.wait_for(state="attached", timeout=left * 1000)
        except PlaywrightTimeoutError:
            pytest.fail(
                f"no step of “{template.name}” on the timeline 5 s after the save; see {shot(page, 'timeline')}"
            )
        settle(page)
        assert runner.poll() is None, (tmp_path / "journey.log").read_text()[-2000:]
    finally:
        codes = stop_all([runner])
        stop_process(server)
        db.dispose()
    assert codes == [0], (tmp_path / "journey.log").read_text()[-2000:]


# --- 4. a negative delay -------------------------------------------------------


def test_a_negative_delay_is_shown_as_an_error_and_kept(page: Page, dashboard: str) -> None:
    open_page(page, dashboard, "new_campaign", "New Campaign")
    page.get_by_role("button", name="Add Email").click()
    settle(page)
    grid = page.locator(GRID).first
    delay_days = 4  # order, name, type, delay days, delay hours
    expect(grid.locator("th").nth(delay_days - 1)).to_have_text("delay days")
    edit_cell(page, grid, 0, delay_days, "-1")
    error = page.locator(ERROR).filter(has_text=re.compile(r"negative|0 or more"))
    expect(error.first).to_be_visible()
    expect(error.first).to_contain_text("delay")
    expect(grid.locator(f'[data-testid="glide-cell-{delay_days}-0"]')).to_have_text("-1")


# --- 5. every problem of a bad form at once ------------------------------------


def test_every_error_of_a_bad_form_shows_after_one_save(page: Page, dashboard: str, demo_database: Database) -> None:
    before = campaign_count(demo_database)
    open_page(page, dashboard, "new_campaign", "New Campaign")
    page.get_by_role("button", name="Add Email").click()
    settle(page)
    subject = page.get_by_role("textbox", name="Subject")
    subject.fill("Hello {{ contact.first_name")
    subject.press("Tab")
    settle(page)
    # Leaving the subject keeps the step's panel open on its body.
    expect(page.get_by_role("textbox", name="Body")).to_be_visible()

    page.get_by_role("button", name="Save and activate").click()
    settle(page)
    name = page.get_by_role("textbox", name="Campaign name")
    contact = page.get_by_role("combobox", name="Contact", exact=True)
    body = page.get_by_role("textbox", name="Body")
    try:
        # Each problem is shown under its own field, all after the one click.
        expect(error_after(name)).to_contain_text("name")
        expect(error_after(contact)).to_contain_text("contact")
        expect(error_after(subject)).to_contain_text("}}")
        expect(error_after(body)).to_be_visible()
        expect(page.locator('[data-testid="stExpander"]').first.locator(ERROR)).to_have_count(2)
        expect(error_after(body)).not_to_contain_text("}}")  # its own, not the subject's
    except AssertionError as exc:
        seen = " | ".join(t.replace("\n", " ") for t in page.locator(ERROR).all_inner_texts())
        raise AssertionError(f"{exc}\nerrors shown: {seen}; see {shot(page, 'bad-form')}") from None
    expect(page.get_by_role("textbox", name="Body")).to_be_visible()
    assert campaign_count(demo_database) == before


# --- 6. a row click opens the detail --------------------------------------------


def test_a_row_click_opens_the_campaign(page: Page, dashboard: str, demo_database: Database) -> None:
    open_page(page, dashboard, "campaigns", "Campaigns")
    grid = page.locator(GRID).first
    first_id = int(grid.locator('[data-testid="glide-cell-1-0"]').inner_text().replace(",", ""))
    with demo_database.read_session() as s:
        campaign = s.get(AutomationCampaign, first_id)
        assert campaign is not None
        name, status = campaign.name, campaign.status
    click_row(page, grid, 0, page.get_by_role("button", name="Duplicate"))
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    for button in ("Delete", "Save as template", "Close"):
        expect(page.get_by_role("button", name=button, exact=True)).to_be_visible()
    if status == "active":
        expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()
    if status in ("active", "paused"):
        expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_visible()


def test_a_row_click_opens_the_contact(page: Page, dashboard: str) -> None:
    open_page(page, dashboard, "contacts", "Contacts")
    grid = page.locator(GRID).first
    name = grid.locator('[data-testid="glide-cell-2-0"]').inner_text()
    click_row(page, grid, 0, page.get_by_role("tab", name="Timeline"))
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("tab", name="Edit")).to_be_visible()
    expect(page.get_by_role("tab", name="Delete")).to_be_visible()


def test_a_row_click_opens_the_follow_up(page: Page, dashboard: str) -> None:
    open_page(page, dashboard, "followups", "Follow-ups")
    grid = page.locator(GRID).first
    title = grid.locator('[data-testid="glide-cell-2-0"]').inner_text()
    click_row(page, grid, 0, page.get_by_role("button", name="Done", exact=True))
    expect(page.get_by_role("button", name=re.compile(r"^Snooze \d+ days?$"))).to_be_visible()
    expect(page.get_by_text(title, exact=True).filter(visible=True).first).to_be_visible()


# --- 7. every list reaches its last row -----------------------------------------

CAPTION = re.compile(
    r"(?P<first>[\d,]+)–(?P<last>[\d,]+) of (?P<total>[\d,]+) · page (?P<page>[\d,]+) of (?P<pages>[\d,]+)"
)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.parametrize(
    ("path", "heading", "noun", "total_of"),
    [
        ("campaigns", "Campaigns", "Campaigns", campaign_count),
        ("contacts", "Contacts", "Contacts", contact_count),
        ("followups", "Follow-ups", "Follow-ups", overdue_count),
    ],
)
def test_every_list_reaches_its_last_row(
    page: Page,
    dashboard: str,
    demo_database: Database,
    path: str,
    heading: str,
    noun: str,
    total_of: Callable[[Database], int],
) -> None:
    open_page(page, dashboard, path, heading)
    caption = page.get_by_text(re.compile(rf"^{re.escape(noun)} [\d,]+–[\d,]+ of [\d,]+ · page"))
    expect(caption).to_be_visible()
    expect(caption).to_contain_text("page 1 of")
    last = page.get_by_role("button", name="Last", exact=True)
    expect(last).to_be_enabled()  # the demo has more than one page of each
    for name in ("First", "Previous", "Next"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    expected_before = total_of(demo_database)
    last.click()
    settle(page)
    expect(caption).to_have_text(re.compile(r"page ([\d,]+) of \1$"))
    found = CAPTION.search(caption.inner_text())
    assert found is not None, caption.inner_text()
    total = _number(found["total"])
    assert total in {expected_before, total_of(demo_database)}
    pages = math.ceil(total / PAGE_SIZE)
    assert pages > 1 and _number(found["page"]) == _number(found["pages"]) == pages
    assert _number(found["first"]) == (pages - 1) * PAGE_SIZE + 1
    assert _number(found["last"]) == total
    expect(last).to_be_disabled()

    download = page.get_by_role("button", name="Download this page (CSV)")
    expect(download).to_be_visible()
    with page.expect_download() as info:
        download.click()
    content = Path(info.value.path()).read_text(encoding="utf-8-sig")
    settle(page)
    on_page = total - (pages - 1) * PAGE_SIZE
    assert len(list(csv.DictReader(io.StringIO(content)))) == on_page
    assert len(page.locator(GRID).first.locator("tbody tr").all()) == on_page


# --- 8. a fresh form after a save -----------------------------------------------


def test_the_form_is_empty_again_after_a_save(page: Page, dashboard: str, demo_database: Database) -> None:
    with demo_database.read_session() as s:
        contact = s.scalars(select(Contact).where(Contact.email.is_not(None)).order_by(Contact.id)).first()
        assert contact is not None
        email, contact_id = contact.email, contact.id
    open_page(page, dashboard, "new_campaign", "New Campaign")
    page.get_by_label("Campaign name").fill("Journey welcome")
    page.get_by_label("Campaign name").press("Enter")
    settle(page)
    find = page.get_by_label("Find contact")
    find.fill(email)
    find.press("Enter")
    settle(page)
    choose(page, "Contact", email)
    choose(page, "Start from a template (optional)", "Lead Nurture (7-day)")
    expect(page.locator('[data-testid="stExpander"]')).to_have_count(4)

    page.get_by_role("button", name="Save and activate").click()
    settle(page)
    expect(page.get_by_text("1 campaign(s) created")).to_be_visible()
    with demo_database.read_session() as s:
        saved = s.scalars(select(AutomationCampaign).where(AutomationCampaign.name == "Journey welcome")).one()
        assert saved.contact_id == contact_id and saved.status == "active"

    expect(page.get_by_label("Campaign name")).to_have_value("")
    expect(page.get_by_label("Find contact")).to_have_value("")
    # A select shows its choice as the value of its box, and its placeholder when empty.
    contact_box = page.get_by_role("combobox", name="Contact", exact=True)
    expect(contact_box).to_have_value("")
    expect(contact_box).to_have_attribute("placeholder", "Choose a contact")
    template_box = page.get_by_role("combobox", name="Start from a template (optional)")
    expect(template_box).to_have_value("")
    expect(template_box).to_have_attribute("placeholder", "From scratch")
    expect(page.locator('[data-testid="stExpander"]')).to_have_count(0)
    expect(page.locator(GRID).first.locator("tbody tr")).to_have_count(0)
