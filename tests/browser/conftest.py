"""A real dashboard (`streamlit run app.py`) on a free loopback port, on a demo
database, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from automations.cli.demo import fill_demo
from automations.domain.config import Settings
from automations.domain.db import Database

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dashboard(
    database_url: str, log: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATIONS_")}
    env.update(
        {
            "AUTOMATIONS_DATABASE_URL": database_url,
            "AUTOMATIONS_OUTBOX_DIR": str(log.parent / "outbox"),
            # The suite runs at any hour (see tests/conftest.py).
            "AUTOMATIONS_SMS_QUIET_HOURS": "off",
        },
        **(extra_env or {}),
    )
    process = subprocess.Popen(
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
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.2)
    process.terminate()
    pytest.fail(f"the dashboard did not start; log: {log.read_text()[-2000:]}")


def start_api_server(database_url: str, log: Path, token: str) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m automations api` on `database_url`, as an installation runs it; its URL
    once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATIONS_")}
    env.update(AUTOMATIONS_DATABASE_URL=database_url, AUTOMATIONS_API_TOKEN=token)
    process = subprocess.Popen(
        [sys.executable, "-m", "automations", "api", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/openapi.json", timeout=1):
                return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                pytest.fail(f"the API did not start; log: {log.read_text()[-2000:]}")
            time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a server the test started: politely, then for sure."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory, _migrated_sqlite_file: Path) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("browser") / "demo.db"
    shutil.copyfile(_migrated_sqlite_file, path)
    db = Database(f"sqlite:///{path}", settings=Settings(_env_file=None))
    fill_demo(db, contacts=80, seed=11)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def dashboard(demo_database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("dashboard") / "streamlit.log"
    process, url = start_dashboard(demo_database.url, log)
    yield url
    stop_process(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()
