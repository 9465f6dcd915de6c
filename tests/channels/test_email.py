"""Email over a real aiosmtpd server: delivery, personalisation, headers, retries."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from automations.domain.config import Settings
from automations.domain.db import Database
from automations.runner.engine import Runner
from tests.channels.support import (
    add_campaign,
    add_contact,
    smtp_server,
    steps_and_attempts,
)
from tests.conftest import NOW

EMAIL = {
    "name": "Welcome",
    "message_type": "email",
    "subject": "Welcome {{ contact.first_name }}",
    "body": "Hello {{ contact.first_name | default('there') }} from {{ campaign.name }}",
}


def smtp_runner(db: Database, port: int, **overrides: object) -> Runner:
    settings = Settings(
        _env_file=None, smtp_host="127.0.0.1", smtp_port=port, email_from="team@sales.example", **overrides
    )
    return Runner(db, settings, runner_id="test-runner", rng=random.Random(1))


def test_email_is_delivered_personalised_with_idempotent_headers(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW, first_name="Grace", email="grace@example.com")
    add_campaign(sqlite_db, contact, [EMAIL], start_at=NOW, now=NOW, name="Onboarding")
    with smtp_server() as (sink, port):
        runner = smtp_runner(sqlite_db, port)
        summary = runner.tick(NOW + timedelta(seconds=1))
        runner.close()
    assert summary.executed == 1
    [message] = sink.messages
    [step], [attempt] = steps_and_attempts(sqlite_db)
    assert message["Subject"] == "Welcome Grace"
    assert message["To"] == "grace@example.com"
    assert message.get_content().strip() == "Hello Grace from Onboarding"
    assert message["Message-ID"] == f"<{step.idempotency_key}@sales.example>"
    assert "mailto:team@sales.example" in message["List-Unsubscribe"]
    assert step.status == "sent" and step.attempts == 1
    assert step.result["message_id"] == message["Message-ID"]
    assert attempt.outcome == "sent" and attempt.runner_id == "test-runner"


def test_451_is_retried_and_delivered_once(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW, email="busy@example.com")
    add_campaign(sqlite_db, contact, [EMAIL], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        sink.replies["busy@example.com"] = ["451 4.7.1 try again later"]
        runner = smtp_runner(sqlite_db, port)
        runner.tick(NOW)
        [step], _ = steps_and_attempts(sqlite_db)
        assert step.status == "pending" and "451" in (step.last_error or "")
        assert step.due_at > NOW  # backed off
        runner.tick(NOW)  # not due yet: nothing happens
        assert len(sink.messages) == 0
        runner.tick(step.due_at + timedelta(seconds=1))
        runner.close()
    [step], attempts = steps_and_attempts(sqlite_db)
    assert step.status == "sent" and step.attempts == 2
    assert [a.outcome for a in attempts] == ["retry", "sent"]
    assert len(sink.messages) == 1


def test_550_fails_at_once_and_next_step_goes_on(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW, email="gone@example.com")
    add_campaign(sqlite_db, contact, [EMAIL, {**EMAIL, "name": "Second"}], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        sink.replies["gone@example.com"] = ["550 5.1.1 mailbox unavailable"]
        runner = smtp_runner(sqlite_db, port)
        runner.tick(NOW)
        runner.close()
    steps, attempts = steps_and_attempts(sqlite_db)
    assert steps[0].status == "failed" and "550" in (steps[0].last_error or "")
    assert steps[0].attempts == 1
    # The campaign goes on: the second step (no delay) was delivered.
    assert steps[1].status == "sent"
    assert len(sink.messages) == 1


def test_server_down_is_retried_until_attempts_run_out(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW)
    add_campaign(sqlite_db, contact, [EMAIL], start_at=NOW, now=NOW)
    with smtp_server() as (_sink, port):
        pass  # the server is gone: connections are refused
    runner = smtp_runner(sqlite_db, port, max_attempts=3)
    when = NOW
    for _ in range(3):
        runner.tick(when)
        [step], _ = steps_and_attempts(sqlite_db)
        when = step.due_at + timedelta(seconds=1)
    runner.close()
    [step], attempts = steps_and_attempts(sqlite_db)
    assert [a.outcome for a in attempts] == ["retry", "retry", "failed"]
    assert step.status == "failed" and "no attempts left" in (step.last_error or "")


def test_opted_out_is_skipped_and_missing_address_fails(sqlite_db: Database) -> None:
    out = add_contact(sqlite_db, NOW, email="out@example.com", email_opt_out=True)
    none = add_contact(sqlite_db, NOW, first_name="No", email=None)
    add_campaign(sqlite_db, out, [EMAIL], start_at=NOW, now=NOW)
    add_campaign(sqlite_db, none, [EMAIL], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        runner = smtp_runner(sqlite_db, port)
        runner.tick(NOW)
        runner.close()
    steps, _ = steps_and_attempts(sqlite_db)
    assert (steps[0].status, steps[0].last_error) == ("skipped", "contact opted out of email")
    assert (steps[1].status, steps[1].last_error) == ("failed", "contact has no email address")
    assert sink.messages == []


@pytest.mark.parametrize("batch_size", [200, 2], ids=["one batch", "batches of two"])
def test_one_connection_serves_every_batch_of_a_tick(sqlite_db: Database, batch_size: int) -> None:
    for i in range(6):
        contact = add_contact(sqlite_db, NOW, email=f"p{i}@example.com")
        add_campaign(sqlite_db, contact, [EMAIL], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port)
        runner = Runner(sqlite_db, settings, concurrency=1, batch_size=batch_size)
        assert runner.tick(NOW).executed == 6
        runner.close()
    assert len(sink.messages) == 6
    assert sink.connections == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(sqlite_db: Database) -> None:
    import time

    first, second = (add_contact(sqlite_db, NOW, email=f"p{i}@example.com") for i in range(2))
    add_campaign(sqlite_db, first, [EMAIL], start_at=NOW, now=NOW)
    add_campaign(sqlite_db, second, [EMAIL], start_at=NOW + timedelta(minutes=5), now=NOW)
    with smtp_server(idle_timeout=0.3) as (sink, port):
        settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port)
        runner = Runner(sqlite_db, settings, concurrency=1)
        assert runner.tick(NOW).executed == 1
        time.sleep(1.0)  # the server hangs up on the pooled connection
        summary = runner.tick(NOW + timedelta(minutes=6))
        runner.close()
    assert summary.executed == 1
    steps, attempts = steps_and_attempts(sqlite_db)
    assert [s.status for s in steps] == ["sent", "sent"]
    assert len(attempts) == 2 and all(a.outcome == "sent" for a in attempts)
    assert len(sink.messages) == 2 and sink.connections == 2


def test_outbox_without_smtp_settings(sqlite_db: Database, tmp_path: object) -> None:
    contact = add_contact(sqlite_db, NOW, first_name="Lin")
    add_campaign(sqlite_db, contact, [EMAIL], start_at=NOW, now=NOW)
    settings = Settings(_env_file=None, outbox_dir=f"{tmp_path}/box")
    runner = Runner(sqlite_db, settings)
    runner.tick(NOW)
    runner.close()
    [step], _ = steps_and_attempts(sqlite_db)
    files = list((tmp_path / "box" / "email").glob("*.eml"))  # type: ignore[operator]
    assert [f.name for f in files] == [f"{step.idempotency_key}.eml"]
    assert "Subject: Welcome Lin" in files[0].read_text()
    assert step.status == "sent"
