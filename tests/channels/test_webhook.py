"""Webhooks against a real HTTP server on loopback: signatures, retries, failures,
and the private-network guard (every spelling of a private target is refused)."""

from __future__ import annotations

import random
import socket
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from automations.channels.webhook import (
    WebhookChannel,
    get_webhook_secret,
    webhook_secret_is_set,
)
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.netguard import resolve_and_check
from automations.runner.engine import Runner
from tests.channels.support import (
    Reply,
    add_campaign,
    add_contact,
    free_port,
    http_server,
    steps_and_attempts,
)
from tests.conftest import NOW

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def hook(url: str) -> dict[str, object]:
    return {"name": "Notify CRM", "message_type": "webhook", "webhook_url": url, "webhook_payload": {"stage": "trial"}}


def runner_for(db: Database, *, allow_private: bool = True, timeout: float = 2.0, **kwargs: object) -> Runner:
    settings = Settings(
        _env_file=None, webhook_secret=SECRET, webhook_allow_private=allow_private, webhook_timeout=timeout
    )
    return Runner(db, settings, rng=random.Random(7), **kwargs)


def run_once(db: Database, url: str, **kwargs: object) -> tuple[list, list]:
    contact = add_contact(db, NOW, first_name="Alan")
    add_campaign(db, contact, [hook(url)], start_at=NOW, now=NOW)
    runner = runner_for(db, **kwargs)
    runner.tick(NOW)
    runner.close()
    return steps_and_attempts(db)


def test_signed_post_verifies_with_standardwebhooks(db: Database) -> None:
    with http_server() as sink:
        [step], [attempt] = run_once(db, sink.url("/crm"))
    [request] = sink.requests
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert request.headers["webhook-id"] == step.idempotency_key
    assert payload["event"] == "automation.step"
    assert payload["contact"]["first_name"] == "Alan"
    assert payload["step"]["id"] == step.id and payload["data"] == {"stage": "trial"}
    assert step.status == "sent" and step.result["http_status"] == 200
    assert attempt.outcome == "sent"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500),
        Reply(503),
        Reply(408),
        Reply(429, {"Retry-After": "120"}),
    ],
    ids=["500", "503", "408", "429"],
)
def test_transient_answers_are_retried_with_the_same_webhook_id(sqlite_db: Database, reply: Reply) -> None:
    with http_server() as sink:
        sink.on("/hook", reply)
        [step], _ = run_once(sqlite_db, sink.url())
        assert step.status == "pending" and f"HTTP {reply.status}" in (step.last_error or "")
        if reply.status == 429:
            assert step.due_at >= NOW + timedelta(seconds=120)  # Retry-After honoured
        runner = runner_for(sqlite_db)
        runner.tick(step.due_at + timedelta(seconds=1))
        runner.close()
    [step], attempts = steps_and_attempts(sqlite_db)
    assert step.status == "sent"
    assert [a.outcome for a in attempts] == ["retry", "sent"]
    ids = {r.headers["webhook-id"] for r in sink.requests}
    assert ids == {step.idempotency_key} and len(sink.requests) == 2


def test_timeout_and_refused_connection_are_retried(sqlite_db: Database) -> None:
    with http_server() as sink:
        sink.on("/slow", Reply(200, delay=1.5))
        [step], [attempt] = run_once(sqlite_db, sink.url("/slow"), timeout=0.5)
    assert step.status == "pending" and attempt.outcome == "retry"
    assert "timed out" in (attempt.detail or "")
    [_first, refused], [_a, attempt] = run_once(sqlite_db, f"http://127.0.0.1:{free_port()}/x")
    assert refused.status == "pending" and "unreachable" in (attempt.detail or "")


@pytest.mark.parametrize("status", [400, 404, 410])
def test_client_errors_fail_at_once(sqlite_db: Database, status: int) -> None:
    with http_server() as sink:
        sink.on("/hook", Reply(status))
        [step], [attempt] = run_once(sqlite_db, sink.url())
    assert step.status == "failed" and attempt.outcome == "failed"
    assert f"HTTP {status}" in (step.last_error or "")


def test_redirects_are_followed_to_allowed_targets(sqlite_db: Database) -> None:
    with http_server() as sink:
        sink.on("/old", Reply(307, {"Location": "/new"}))
        [step], _ = run_once(sqlite_db, sink.url("/old"))
    assert sink.paths() == ["/old", "/new"]
    assert step.status == "sent"


def test_redirect_to_a_private_address_is_refused(sqlite_db: Database) -> None:
    """The first target stands in for a public receiver (allowed by a guard that
    knows only its origin); the redirect goes through the real guard."""
    with http_server() as sink:
        public = sink.url("/start")
        sink.on("/start", Reply(302, {"Location": "http://169.254.169.254/latest/meta-data"}))
        sink.on("/again", Reply(302, {"Location": sink.url("/internal")}))

        def guard(url: str) -> list[str]:
            if url in (public, sink.url("/again")):
                return ["127.0.0.1"]
            return resolve_and_check(url, allow_private=False)

        settings = Settings(_env_file=None, webhook_secret=SECRET)
        channel = WebhookChannel(settings, SECRET, guard=guard)
        contact = add_contact(sqlite_db, NOW)
        add_campaign(sqlite_db, contact, [hook(public)], start_at=NOW, now=NOW)
        add_campaign(sqlite_db, contact, [hook(sink.url("/again"))], start_at=NOW, now=NOW)
        runner = runner_for(sqlite_db, allow_private=False)
        runner.channels.webhook = channel
        runner.tick(NOW)
        runner.close()
    steps, _ = steps_and_attempts(sqlite_db)
    assert [s.status for s in steps] == ["failed", "failed"]
    assert "169.254.169.254" in (steps[0].last_error or "")
    assert "loopback" in (steps[1].last_error or "")
    assert sorted(sink.paths()) == ["/again", "/start"]  # nothing reached /internal


def _ssrf_spellings(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://2130706433:{port}/",
        f"http://0177.0.0.1:{port}/",
        f"http://0x7f.0.0.1:{port}/",
        f"http://0x7f000001:{port}/",
        f"http://127.1:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://{socket.gethostname()}:{port}/",
        "http://10.0.0.8/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
    ]


def test_every_private_spelling_is_refused_without_the_flag(sqlite_db: Database) -> None:
    with http_server() as sink:
        contact = add_contact(sqlite_db, NOW)
        urls = _ssrf_spellings(sink.port)
        for url in urls:
            add_campaign(sqlite_db, contact, [hook(url)], start_at=NOW, now=NOW, name=url)
        runner = runner_for(sqlite_db, allow_private=False)
        runner.tick(NOW)
        runner.close()
        assert sink.requests == []
    steps, attempts = steps_and_attempts(sqlite_db)
    assert len(steps) == len(urls)
    for step in steps:
        assert step.status == "failed", step.webhook_url
        assert "refused" in (step.last_error or ""), step.webhook_url
    assert {a.outcome for a in attempts} == {"failed"}


def test_secret_is_generated_once_and_kept(db: Database) -> None:
    settings = Settings(_env_file=None)
    with db.session() as s:
        assert not webhook_secret_is_set(s, settings)
        first = get_webhook_secret(s, settings)
    with db.session() as s:
        assert get_webhook_secret(s, settings) == first
        assert webhook_secret_is_set(s, settings)
    assert first.startswith("whsec_") and len(first) > 30
    with http_server() as sink:
        contact = add_contact(db, NOW)
        add_campaign(db, contact, [hook(sink.url())], start_at=NOW, now=NOW)
        runner = Runner(db, Settings(_env_file=None, webhook_allow_private=True))
        runner.tick(NOW)
        runner.close()
    [request] = sink.requests
    assert Webhook(first).verify(request.body, request.headers)["event"] == "automation.step"
