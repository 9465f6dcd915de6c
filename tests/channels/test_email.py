"""Email over a real aiosmtpd server: delivery, personalisation, headers, retries;
HTML plus text, tracked links and one-click unsubscribe (SPEC section 11)."""

from __future__ import annotations

import email
import email.policy
import logging
import random
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from automations.channels.base import Job
from automations.channels.email import build_message, email_channel
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import AppSetting, AutomationCampaign, Contact
from automations.engagement.tokens import TokenData, read_token, step_from_reply_address
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
    options: dict[str, object] = {"email_from": "team@sales.example", **overrides}
    settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port, **options)  # type: ignore[arg-type]
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
    assert parts(message)[0].strip() == "Hello Grace from Onboarding"  # the text part
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


# --- HTML and text, tracking, unsubscribe (SPEC section 11) ---------------------

LINKED = {
    **EMAIL,
    "body": "Hello {{ contact.first_name }}, see [the plan](https://example.com/plan?id=7) or https://example.com/faq.",
}
PUBLIC = "https://go.sales.example"


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML part of a received message."""
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def stored_key(db: Database) -> str:
    with db.read_session() as session:
        key = session.scalar(select(AppSetting.value).where(AppSetting.key == "tracking_key"))
    assert key
    return key


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_email_is_html_and_text_with_unsubscribe_headers_and_links_untouched(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW, first_name="Grace", email="grace@example.com")
    add_campaign(sqlite_db, contact, [LINKED], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        runner = smtp_runner(sqlite_db, port)
        runner.tick(NOW)
        runner.close()
    [message] = sink.messages
    text, html = parts(message)
    assert text.strip() == "Hello Grace, see the plan (https://example.com/plan?id=7) or https://example.com/faq."
    assert '<a href="https://example.com/plan?id=7"' in html and ">the plan</a>" in html
    assert '<a href="https://example.com/faq"' in html
    assert "/t/" not in html and 'width="1"' not in html  # no public URL: nothing tracked
    assert message["List-Unsubscribe"] == "<mailto:team@sales.example?subject=unsubscribe>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Reply-To"] is None
    [step], _ = steps_and_attempts(sqlite_db)
    assert "links" not in (step.result or {})


def test_with_a_public_url_links_are_tracked_and_unsubscribe_is_one_click(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    contact = add_contact(sqlite_db, NOW, first_name="Grace", email="grace@example.com")
    add_campaign(sqlite_db, contact, [LINKED], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        runner = smtp_runner(sqlite_db, port, public_url=PUBLIC + "/", database_url=sqlite_db.url)
        runner.tick(NOW)
        runner.close()
    [message] = sink.messages
    [step], [attempt] = steps_and_attempts(sqlite_db)
    key = stored_key(sqlite_db)
    text, html = parts(message)
    clicks = re.findall(r'<a href="([^"]*)"', html)
    assert len(clicks) == 2 and all(url.startswith(f"{PUBLIC}/t/c/") for url in clicks)
    assert [read_token(key, token_of(url)) for url in clicks] == [
        TokenData("c", step.id, 0),
        TokenData("c", step.id, 1),
    ]
    [pixel] = re.findall(r'<img src="([^"]*)" width="1" height="1" alt="">', html)
    assert pixel.startswith(f"{PUBLIC}/t/o/") and read_token(key, token_of(pixel)) == TokenData("o", step.id)
    assert "https://example.com/plan?id=7" in text  # the text part keeps the real URLs
    assert step.result is not None
    assert step.result["links"] == ["https://example.com/plan?id=7", "https://example.com/faq"]
    unsubscribe = str(message["List-Unsubscribe"])
    assert re.fullmatch(rf"<{re.escape(PUBLIC)}/t/u/[A-Za-z0-9_.-]+>", unsubscribe)
    assert read_token(key, token_of(unsubscribe.strip("<>"))) == TokenData("u", step.id)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] == f"<{step.idempotency_key}@sales.example>"  # replies still match
    # The signing key is never logged, recorded or sent.
    assert key not in caplog.text and key not in message.as_string()
    assert key not in str(step.result) and key not in (attempt.detail or "")


def test_reply_tokens_give_a_plus_addressed_reply_to(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW, email="grace@example.com")
    add_campaign(sqlite_db, contact, [EMAIL], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        runner = smtp_runner(
            sqlite_db,
            port,
            email_from="Sales <team@sales.example>",
            email_reply_tokens=True,
            database_url=sqlite_db.url,
        )
        runner.tick(NOW)
        runner.close()
    [message] = sink.messages
    [step], _ = steps_and_attempts(sqlite_db)
    [address] = message["Reply-To"].addresses
    assert address.display_name == "Sales" and address.domain == "sales.example"
    assert address.username.startswith("team+r-")
    assert step_from_reply_address(stored_key(sqlite_db), address.addr_spec) == step.id
    # No public URL: the unsubscribe header is a mailto: of the bare sender address.
    assert message["List-Unsubscribe"] == "<mailto:team@sales.example?subject=unsubscribe>"


def test_hostile_html_body_arrives_sanitised(sqlite_db: Database) -> None:
    hostile = {
        **EMAIL,
        "body": '<p>Hi</p><script>alert(1)</script><img src="https://img.example/a.png" onerror="alert(2)">'
        '<a href="javascript:alert(3)">x</a><a href="https://example.com/">site</a>',
    }
    contact = add_contact(sqlite_db, NOW, email="grace@example.com")
    add_campaign(sqlite_db, contact, [hostile], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        runner = smtp_runner(sqlite_db, port)
        runner.tick(NOW)
        runner.close()
    text, html = parts(sink.messages[0])
    for gone in ("<script", "alert", "onerror", "javascript:"):
        assert gone not in html and gone not in text
    assert '<img src="https://img.example/a.png">' in html and "site (https://example.com/)" in text


def test_outbox_writes_the_same_multipart_tracked_message(sqlite_db: Database, tmp_path: Path) -> None:
    contact = add_contact(sqlite_db, NOW, first_name="Lin")
    add_campaign(sqlite_db, contact, [LINKED], start_at=NOW, now=NOW)
    settings = Settings(_env_file=None, outbox_dir=tmp_path / "box", public_url=PUBLIC, database_url=sqlite_db.url)
    runner = Runner(sqlite_db, settings)
    runner.tick(NOW)
    runner.close()
    [step], _ = steps_and_attempts(sqlite_db)
    [path] = (tmp_path / "box" / "email").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text, html = parts(message)
    assert f'href="{PUBLIC}/t/c/' in html and "the plan (https://example.com/plan?id=7)" in text
    assert str(message["List-Unsubscribe"]).startswith(f"<{PUBLIC}/t/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert step.result is not None and step.result["links"][0] == "https://example.com/plan?id=7"


def job(step_id: int = 5, body: str = "See https://example.com/a") -> Job:
    return Job(
        step_id=step_id,
        token="t",
        attempt_no=1,
        campaign_id=1,
        campaign_name="C",
        contact_id=1,
        position=0,
        name="Step",
        message_type="email",
        scheduled_at=NOW,
        due_at=NOW,
        idempotency_key=f"step-{step_id}-key",
        contact={},
        email="ann@example.com",
        subject="Hi",
        body=body,
    )


def test_a_long_unsubscribe_url_is_never_encoded() -> None:
    long_url = "https://automations.marketing-department.a-company-with-a-long-name.example.com"
    settings = Settings(_env_file=None, public_url=long_url)
    raw = bytes(build_message(settings, job(), tracking_key="k" * 43))
    [line] = [line for line in raw.split(b"\n") if line.startswith(b"List-Unsubscribe:")]
    assert b"=?" not in line and line.rstrip().endswith(b">") and long_url.encode() in line


def test_a_campaign_that_does_not_track_sends_its_links_as_they_are(sqlite_db: Database, tmp_path: Path) -> None:
    contact = add_contact(sqlite_db, NOW, first_name="Lin")
    campaign_id = add_campaign(sqlite_db, contact, [LINKED], start_at=NOW, now=NOW)
    with sqlite_db.session() as session:
        campaign = session.get(AutomationCampaign, campaign_id)
        assert campaign is not None
        campaign.tracking = False  # as copied from a template with tracking off
    settings = Settings(_env_file=None, outbox_dir=tmp_path / "box", public_url=PUBLIC, database_url=sqlite_db.url)
    runner = Runner(sqlite_db, settings)
    runner.tick(NOW)
    runner.close()
    [path] = (tmp_path / "box" / "email").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    _, html = parts(message)
    assert "/t/c/" not in html and "/t/o/" not in html and 'href="https://example.com/plan?id=7"' in html
    assert str(message["List-Unsubscribe"]).startswith(f"<{PUBLIC}/t/u/")


def test_tracking_can_be_turned_off_but_unsubscribe_stays_one_click() -> None:
    settings = Settings(_env_file=None, public_url=PUBLIC)
    message = build_message(settings, job(), tracking_key="k" * 43, track=False)
    _, html = parts(message)
    assert "/t/" not in html and 'href="https://example.com/a"' in html
    assert str(message["List-Unsubscribe"]).startswith(f"<{PUBLIC}/t/u/")


def test_a_test_message_has_no_tokens(tmp_path: Path) -> None:
    """A test message belongs to no step: no tracking, a mailto: unsubscribe, no key needed."""
    settings = Settings(_env_file=None, outbox_dir=tmp_path, public_url=PUBLIC, email_reply_tokens=True)
    channel = email_channel(settings)
    [delivery] = channel.send_many([job(step_id=0)])
    channel.close()
    assert delivery.outcome == "sent"
    [path] = (tmp_path / "email").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert str(message["List-Unsubscribe"]).startswith("<mailto:") and message["Reply-To"] is None


def test_an_unreadable_tracking_key_is_retried_without_saying_why_in_detail(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, outbox_dir=tmp_path, public_url=PUBLIC)

    def broken() -> str:
        raise RuntimeError("connection to postgresql://app:pg-secret@db failed")

    channel = email_channel(settings, tracking_key=broken)
    [delivery] = channel.send_many([job()])
    assert delivery.outcome == "retry" and "tracking key" in delivery.detail
    assert "pg-secret" not in delivery.detail
    assert not list(tmp_path.glob("email/*.eml"))


def test_a_bouncing_address_is_not_mailed_again(sqlite_db: Database) -> None:
    bouncing = add_contact(sqlite_db, NOW, email="gone@example.com")
    with sqlite_db.session() as session:
        contact = session.get(Contact, bouncing)
        assert contact is not None
        contact.email_bouncing = True  # as a hard bounce leaves it (services.engagement)
    add_campaign(sqlite_db, bouncing, [EMAIL], start_at=NOW, now=NOW)
    with smtp_server() as (sink, port):
        runner = smtp_runner(sqlite_db, port)
        runner.tick(NOW)
        runner.close()
    [step], _ = steps_and_attempts(sqlite_db)
    assert (step.status, step.last_error) == ("skipped", "email bounced")
    assert sink.messages == []
