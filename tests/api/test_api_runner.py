"""End to end: a campaign created through the API is executed by `python runner.py
--once` (another process, same SQLite file) and read back through the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from automations.api import create_app
from automations.domain.db import Database
from automations.domain.timeutil import utcnow
from tests.api.conftest import AUTH, EMAIL_STEP, SMS_STEP, TASK_STEP, api_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A webhook receiver on loopback; yields its URL and the requests it got."""
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_campaign_created_over_http_is_executed_by_the_runner(
    sqlite_db: Database, tmp_path: Path, receiver: tuple[str, list[dict[str, object]]]
) -> None:
    url, received = receiver
    api = TestClient(create_app(sqlite_db, api_settings(webhook_allow_private=True)), headers=AUTH)
    contact = api.post(
        "/api/contacts/", json={"first_name": "Ann", "email": "ann@example.com", "phone": "+14155550123"}
    ).json()
    hook = {"name": "Tell the CRM", "message_type": "webhook", "webhook_url": url}
    created = api.post(
        "/api/automation/campaigns/",
        json={
            "name": "Welcome Ann",
            "contact_id": contact["id"],
            "start_at": (utcnow() - timedelta(hours=1)).isoformat(),
            "steps": [EMAIL_STEP, SMS_STEP | {"delay_days": 0, "delay_hours": 0}, TASK_STEP | {"delay_days": 0}, hook],
        },
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATIONS_")}
    env.update(
        PYTHONPATH=str(REPO),
        AUTOMATIONS_DATABASE_URL=sqlite_db.url,
        AUTOMATIONS_OUTBOX_DIR=str(tmp_path / "outbox"),
        AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE="1",
        AUTOMATIONS_WEBHOOK_SECRET="whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
        AUTOMATIONS_SMS_QUIET_HOURS="off",  # the suite runs at any hour (see tests/conftest.py)
    )
    run = subprocess.run(
        [sys.executable, str(REPO / "runner.py"), "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    campaign = api.get(f"/api/automation/campaigns/{campaign_id}/").json()
    assert [(s["message_type"], s["status"]) for s in campaign["steps"]] == [
        ("email", "sent"),
        ("sms", "sent"),
        ("task", "done"),
        ("webhook", "sent"),
    ]
    assert all(s["attempts"] == 1 and s["executed_at"] and s["last_error"] is None for s in campaign["steps"])
    assert (campaign["status"], campaign["progress"], campaign["next_step_name"]) == ("completed", 1.0, None)
    assert campaign["completed_at"] is not None

    email = campaign["steps"][0]
    attempts = api.get(f"/api/automation/campaigns/{campaign_id}/steps/{email['id']}/attempts/").json()
    assert attempts["total"] == 1 and attempts["items"][0]["outcome"] == "sent"
    eml = (tmp_path / "outbox" / "email").glob("*.eml")
    assert "Subject: Hi Ann" in next(eml).read_text(), "the email went to the outbox"
    assert len(received) == 1 and received[0]["headers"].get("webhook-id")

    listed = api.get("/api/automation/campaigns/", params={"status": "completed"}).json()
    assert [c["id"] for c in listed["items"]] == [campaign_id]
    figures = api.get("/api/automation/stats/").json()
    assert figures["steps_by_status"]["sent"] == 3 and figures["steps_by_status"]["done"] == 1
    assert figures["success_rate"] == 1.0
    assert figures["followups"]["pending"] == 1  # the task step's follow-up
