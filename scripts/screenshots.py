"""Regenerate the README's screenshots: docs/overview.png, docs/campaign_builder.png
and one of every page in docs/screens/.

    python scripts/screenshots.py [--out docs]

Builds a demo database in a temporary folder, starts the dashboard on a free
loopback port and photographs it with Debian's Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from automations.cli.demo import fill_demo  # noqa: E402
from automations.domain import migrate  # noqa: E402
from automations.domain.config import Settings  # noqa: E402
from automations.domain.db import Database  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _settle(page: Page, heading: str) -> None:
    page.get_by_role("heading", name=heading).first.wait_for()
    page.wait_for_load_state("networkidle")
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=30_000)
    page.locator('[data-testid="stSkeleton"]').first.wait_for(state="detached", timeout=30_000)
    # Every table drawn (a grid is a canvas once its data is in; one in a closed expander is not drawn).
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=\"stDataFrame\"]')]"
        ".filter(e => e.offsetParent && !e.closest('details:not([open])'))"
        ".every(e => e.querySelector('canvas'))",
        timeout=30_000,
    )
    page.wait_for_timeout(1500)


def _builder(page: Page, url: str, contact_email: str) -> None:
    page.goto(f"{url}/new_campaign")
    _settle(page, "New Campaign")
    page.get_by_label("Campaign name").fill("Onboarding")
    page.get_by_label("Find contact").fill(contact_email)
    page.get_by_label("Find contact").press("Enter")
    page.get_by_role("combobox", name="Contact").click()
    page.get_by_role("option", name=contact_email).click()
    page.get_by_role("combobox", name="Start from a template (optional)").click()
    page.get_by_role("option", name="Customer Onboarding").first.click()
    page.wait_for_timeout(1500)
    _settle(page, "New Campaign")


# Every page of the navigation: (URL path, heading, file name).
PAGES = [
    ("", "Overview", "overview"),
    ("campaigns", "Campaigns", "campaigns"),
    ("new_campaign", "New Campaign", "new_campaign"),
    ("templates", "Templates", "templates"),
    ("calendar", "Calendar", "calendar"),
    ("statistics", "Statistics", "statistics"),
    ("rules", "Follow-up rules", "rules"),
    ("followups", "Follow-ups", "followups"),
    ("contacts", "Contacts", "contacts"),
    ("settings", "Settings", "settings"),
]


def _click_first_row(page: Page) -> None:
    """Open the first row of the page's first list (a click on its row marker)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    if box is not None:
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
        page.wait_for_timeout(2500)


def _every_page(page: Page, url: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path, heading, name in PAGES:
        page.goto(f"{url}/{path}")
        _settle(page, heading)
        if name in ("campaigns", "templates", "contacts", "followups"):
            _click_first_row(page)
        # Streamlit scrolls inside its own container: a tall window shows the whole page.
        height = page.evaluate(
            "Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], section.main')]"
            ".map(e => e.scrollHeight), 1000)"
        )
        page.set_viewport_size({"width": 1440, "height": min(int(height), 4000)})
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / f"{name}.png"))
        page.set_viewport_size({"width": 1440, "height": 1000})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url_db = f"sqlite:///{tmp}/demo.db"
        db = Database(url_db, settings=Settings(_env_file=None))
        migrate.upgrade(db)
        fill_demo(db, contacts=500, seed=7)
        with db.read_session() as s:
            from sqlalchemy import select

            from automations.domain.models import Contact

            email = s.scalar(select(Contact.email).where(Contact.email.is_not(None)).order_by(Contact.id))
        db.dispose()
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATIONS_")}
        env.update(AUTOMATIONS_DATABASE_URL=url_db, AUTOMATIONS_OUTBOX_DIR=f"{tmp}/outbox")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--client.toolbarMode",
                "minimal",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.goto(url)
                _settle(page, "Overview")
                page.screenshot(path=str(args.out / "overview.png"))
                page.set_viewport_size({"width": 1440, "height": 1900})
                _builder(page, url, email)
                page.screenshot(path=str(args.out / "campaign_builder.png"))
                page.set_viewport_size({"width": 1440, "height": 1000})
                _every_page(page, url, args.out / "screens")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"wrote {args.out / 'overview.png'}, {args.out / 'campaign_builder.png'} and {args.out / 'screens'}/")


if __name__ == "__main__":
    main()
