"""The Settings page's test webhook, against a real HTTP server on loopback: signed as
the runner signs, refused by the same private-network guard, and never quoting
anything of the URL beyond its host."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from automations.channels import DeliveryFailed, get_webhook_secret, send_test_message
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.errors import ValidationError
from tests.channels.support import Reply, free_port, http_server

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def test_test_webhook_is_signed_like_the_runners(sqlite_db: Database) -> None:
    with http_server() as sink:
        outcome = send_test_message(
            settings(webhook_secret=SECRET, webhook_allow_private=True), sqlite_db, "webhook", sink.url("/in?key=k3y")
        )
    assert outcome == "delivered (HTTP 200) at 127.0.0.1"
    [request] = sink.requests
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["event"] == "automation.test"
    assert payload["data"] == {"test": True, "message": payload["data"]["message"]}
    assert request.headers["user-agent"] == "automations-runner"


def test_without_a_configured_secret_it_signs_with_the_stored_one(sqlite_db: Database) -> None:
    config = settings(webhook_allow_private=True)
    with http_server() as sink:
        send_test_message(config, sqlite_db, "webhook", sink.url())
    with sqlite_db.session() as s:
        stored = get_webhook_secret(s, config)  # the one the runner signs with too
    [request] = sink.requests
    Webhook(stored).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/hook", "targets 127.0.0.1, a loopback address"),
        ("http://localhost:{port}/hook", "targets localhost, a loopback name"),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "a loopback address"),
        ("http://2130706433:{port}/hook", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://192.168.1.10/hook", "a private network address"),
    ],
)
def test_private_targets_are_refused_as_the_runner_refuses_them(sqlite_db: Database, url: str, reason: str) -> None:
    with http_server() as sink, pytest.raises(ValidationError) as refused:
        send_test_message(settings(), sqlite_db, "webhook", url.format(port=sink.port))
    assert sink.requests == []
    message = refused.value.errors["to"]
    assert message.startswith("this URL is refused:") and reason in message
    assert "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE=1" in message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "the URL must be an http:// or https:// URL"),
        ("https://user:pa55word@example.com/x", "the URL must not contain credentials"),
        ("http://example.com:99999/s3cret", "this is not a valid URL"),
        ("   ", "enter a URL to send the test to"),
    ],
)
def test_bad_urls_say_what_is_wrong_without_quoting_them(sqlite_db: Database, url: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        send_test_message(settings(), sqlite_db, "webhook", url)
    assert refused.value.errors == {"to": message}


def test_failures_name_the_host_only(sqlite_db: Database) -> None:
    config = settings(webhook_secret=SECRET, webhook_allow_private=True, webhook_timeout=2)
    with http_server() as sink:
        sink.on("/hooks/T0KEN", Reply(500))
        with pytest.raises(DeliveryFailed) as failed:
            send_test_message(config, sqlite_db, "webhook", sink.url("/hooks/T0KEN"))
    assert str(failed.value) == "webhook target answered HTTP 500"
    with pytest.raises(DeliveryFailed) as unreachable:
        send_test_message(config, sqlite_db, "webhook", f"http://127.0.0.1:{free_port()}/hooks/T0KEN?sig=x")
    assert str(unreachable.value).startswith("webhook unreachable")
    assert "T0KEN" not in str(unreachable.value) and SECRET not in str(unreachable.value)


def test_only_email_sms_and_webhook_can_be_tested(sqlite_db: Database) -> None:
    with pytest.raises(ValidationError):
        send_test_message(settings(), sqlite_db, "task", "anything")  # type: ignore[arg-type]
