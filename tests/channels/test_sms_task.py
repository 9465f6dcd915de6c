"""SMS over a Twilio-compatible API on a real loopback server, the SMS outbox,
task steps, and the Settings page's test message."""

from __future__ import annotations

import base64
import json
import random
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from automations.channels import DeliveryFailed, send_test_message
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.errors import ValidationError
from automations.domain.models import ScheduledFollowUp
from automations.runner.engine import Runner
from tests.channels.support import (
    Reply,
    add_campaign,
    add_contact,
    http_server,
    smtp_server,
    steps_and_attempts,
)
from tests.conftest import NOW

SMS = {"name": "Nudge", "message_type": "sms", "body": "Hi {{ contact.first_name }}, quick check-in"}


def sms_settings(url: str) -> Settings:
    return Settings(
        _env_file=None, sms_api_url=url, sms_account_sid="AC123", sms_auth_token="tok-secret", sms_from="+15005550006"
    )


def test_sms_is_posted_to_the_messages_api(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW, first_name="Kay", phone="+442071838750")
    add_campaign(sqlite_db, contact, [SMS], start_at=NOW, now=NOW)
    with http_server() as sink:
        sink.on("/2010-04-01/Accounts/AC123/Messages.json", Reply(201, body=b'{"sid": "SM42"}'))
        runner = Runner(sqlite_db, sms_settings(f"http://127.0.0.1:{sink.port}"))
        runner.tick(NOW)
        runner.close()
    [request] = sink.requests
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    assert form == {"To": "+442071838750", "From": "+15005550006", "Body": "Hi Kay, quick check-in"}
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:tok-secret").decode()
    [step], _ = steps_and_attempts(sqlite_db)
    assert step.status == "sent" and step.result["sid"] == "SM42"


def test_sms_api_errors_retry_or_fail(sqlite_db: Database) -> None:
    first = add_contact(sqlite_db, NOW)
    second = add_contact(sqlite_db, NOW)
    add_campaign(sqlite_db, first, [SMS], start_at=NOW, now=NOW)
    add_campaign(sqlite_db, second, [SMS], start_at=NOW + timedelta(seconds=10), now=NOW)
    with http_server() as sink:
        path = "/2010-04-01/Accounts/AC123/Messages.json"
        sink.on(path, Reply(503), Reply(400))
        runner = Runner(sqlite_db, sms_settings(f"http://127.0.0.1:{sink.port}"), rng=random.Random(3), concurrency=1)
        runner.tick(NOW)
        runner.tick(NOW + timedelta(seconds=10))  # before the first step's backoff ends
        runner.close()
    steps, _ = steps_and_attempts(sqlite_db)
    assert steps[0].status == "pending" and "HTTP 503" in (steps[0].last_error or "")
    assert steps[1].status == "failed" and "HTTP 400" in (steps[1].last_error or "")


def test_sms_outbox_opt_out_and_invalid_number(sqlite_db: Database, tmp_path: Path) -> None:
    ok = add_contact(sqlite_db, NOW, first_name="Mo", phone="+14155550123")
    out = add_contact(sqlite_db, NOW, phone="+14155550124", sms_opt_out=True)
    missing = add_contact(sqlite_db, NOW, phone=None)
    for contact in (ok, out, missing):
        add_campaign(sqlite_db, contact, [SMS], start_at=NOW, now=NOW)
    runner = Runner(sqlite_db, Settings(_env_file=None, outbox_dir=tmp_path / "box"))
    runner.tick(NOW)
    runner.close()
    steps, _ = steps_and_attempts(sqlite_db)
    assert [s.status for s in steps] == ["sent", "skipped", "failed"]
    assert steps[1].last_error == "contact opted out of SMS"
    assert steps[2].last_error == "contact has no phone number"
    [line] = (tmp_path / "box" / "sms.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert (record["to"], record["body"], record["id"]) == (
        "+14155550123",
        "Hi Mo, quick check-in",
        steps[0].idempotency_key,
    )


def test_task_step_creates_one_follow_up_due_at_the_step_time(db: Database) -> None:
    contact = add_contact(db, NOW)
    task = {
        "name": "Call",
        "message_type": "task",
        "subject": "Call {{ contact.first_name }}",
        "body": "Ask about the trial",
        "delay_hours": 2,
    }
    campaign = add_campaign(db, contact, [task], start_at=NOW, now=NOW)
    runner = Runner(db, Settings(_env_file=None))
    runner.tick(NOW + timedelta(hours=2, seconds=5))
    runner.tick(NOW + timedelta(hours=3))
    runner.close()
    [step], _ = steps_and_attempts(db)
    with db.read_session() as s:
        [followup] = s.scalars(select(ScheduledFollowUp)).all()
        assert (followup.title, followup.notes, followup.status) == ("Call Ada", "Ask about the trial", "pending")
        assert followup.due_at == NOW + timedelta(hours=2)
        assert (followup.campaign_id, followup.step_id) == (campaign, step.id)
    assert step.status == "done"


def test_send_test_message_email_and_sms(sqlite_db: Database, tmp_path: Path) -> None:
    with smtp_server() as (sink, port):
        settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port)
        assert send_test_message(settings, sqlite_db, "email", "me@example.com") == "sent via SMTP to me@example.com"
        assert sink.messages[0]["To"] == "me@example.com"
    with pytest.raises(DeliveryFailed):
        send_test_message(settings, sqlite_db, "email", "me@example.com")  # server gone
    outbox = Settings(_env_file=None, outbox_dir=tmp_path / "box")
    assert "written to" in send_test_message(outbox, sqlite_db, "sms", "+14155550100")
    with pytest.raises(ValidationError):
        send_test_message(outbox, sqlite_db, "sms", "12")
    with pytest.raises(ValidationError):
        send_test_message(outbox, sqlite_db, "email", "not-an-address")
