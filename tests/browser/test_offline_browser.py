"""Nothing comes from the internet: the dashboard's pages and the API's documentation,
loaded in Chromium, request only the server they came from, and their favicons are
files that server answers.

The dashboard is started as a user would start it (`streamlit run app.py`, from
another folder, without the command-line options the other browser tests pass), so
the settings in `.streamlit/config.toml` (no usage statistics) are what is tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

from automations.domain.db import Database
from tests.browser.conftest import ROOT, free_port, stop_process

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PAGES = {
    "": "Overview",
    "campaigns": "Campaigns",
    "new_campaign": "New Campaign",
    "templates": "Templates",
    "calendar": "Calendar",
    "statistics": "Statistics",
    "rules": "Rules",
    "followups": "Follow-ups",
    "contacts": "Contacts",
    "settings": "Settings",
}
API_TOKEN = "offline-test-token"
ICON_LINKS = 'link[rel~="icon"]'


def _environment(database: Database, folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATIONS_", "STREAMLIT_"))}
    env.update(
        AUTOMATIONS_DATABASE_URL=database.url, AUTOMATIONS_OUTBOX_DIR=str(folder / "outbox"), PYTHONPATH=str(ROOT)
    )
    env.update(extra)
    return env


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    process.terminate()
    pytest.fail(f"{url} did not answer; log: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def user_dashboard(demo_database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run /path/to/app.py` from an unrelated folder, with no options but the port."""
    folder = tmp_path_factory.mktemp("elsewhere")
    log = folder / "streamlit.log"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port)],
        cwd=folder,
        env=_environment(demo_database, folder),
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_for(f"{url}/_stcore/health", process, log)
    yield url
    stop_process(process)


@pytest.fixture(scope="module")
def api_server(demo_database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m automations api` on the demo database."""
    folder = tmp_path_factory.mktemp("api")
    log = folder / "api.log"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "automations", "api", "--port", str(port)],
        cwd=folder,
        env=_environment(demo_database, folder, AUTOMATIONS_API_TOKEN=API_TOKEN),
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_for(f"{url}/openapi.json", process, log)
    yield url
    stop_process(process)


class Requests:
    """Every request the page made, and those its own Content-Security-Policy
    stopped in the browser (they never leave it)."""

    def __init__(self, page: Page) -> None:
        self.made: list[str] = []
        self.blocked: list[str] = []
        page.on("request", lambda request: self.made.append(request.url))
        page.on("requestfailed", self._failed)

    def _failed(self, request: Request) -> None:
        if request.failure == "csp":
            self.blocked.append(request.url)

    def outside(self) -> list[str]:
        """The requests that left, or would have left, for another machine (data: and
        blob: URLs never do)."""
        return [
            url
            for url in self.made
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).hostname not in LOOPBACK
            and url not in self.blocked
        ]


def _favicons_are_local(page: Page) -> None:
    expect(page.locator(ICON_LINKS).first).to_be_attached()
    links = page.eval_on_selector_all(ICON_LINKS, "links => links.map(link => link.href)")
    assert links
    for link in links:
        assert urlsplit(link).hostname in LOOPBACK, link
        answer = page.request.get(link)
        assert answer.status == 200, link
        assert answer.headers["content-type"].startswith("image/"), link


def _ready(page: Page, title: str) -> None:
    expect(page.get_by_role("heading", name=title).first).to_be_visible(timeout=20_000)
    page.wait_for_load_state("networkidle")
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=20_000)
    expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=20_000)


def test_dashboard_pages_request_nothing_from_outside(page: Page, user_dashboard: str) -> None:
    requests = Requests(page)
    for path, title in PAGES.items():
        page.goto(f"{user_dashboard}/{path}")
        _ready(page, title)
        page.wait_for_timeout(1000)  # charts, the calendar's frame, fonts
        assert requests.outside() == [], path
    assert requests.blocked == []  # nothing was even tried
    assert len(requests.made) > len(PAGES)  # the pages did load their own files
    assert any("/static/media/" in url and url.endswith(".woff2") for url in requests.made)  # bundled fonts
    _favicons_are_local(page)


def test_api_docs_request_nothing_from_outside(page: Page, api_server: str) -> None:
    requests = Requests(page)
    page.goto(f"{api_server}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Automations API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()  # the operations are drawn
    page.wait_for_load_state("networkidle")
    assert requests.outside() == [] and requests.blocked == []
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in requests.made)
    _favicons_are_local(page)


def test_api_redoc_requests_nothing_from_outside(page: Page, api_server: str) -> None:
    requests = Requests(page)
    page.goto(f"{api_server}/redoc")
    expect(page.get_by_role("heading", name="Automations API").first).to_be_visible()
    expect(page.get_by_text("Key figures").first).to_be_attached()  # the operations are listed
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    # ReDoc's own logo, on its maker's CDN, is stopped by the page's policy.
    assert requests.outside() == []
    assert all(urlsplit(url).hostname not in LOOPBACK for url in requests.blocked)
    _favicons_are_local(page)
