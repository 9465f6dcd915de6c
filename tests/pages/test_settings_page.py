"""The settings page: a readable layout of the channels and the configuration, and
test messages, a webhook among them, sent to real servers on loopback."""

from __future__ import annotations

import json

import pytest
from standardwebhooks.webhooks import Webhook
from streamlit.testing.v1 import AppTest

from automations.domain.config import get_settings
from automations.domain.db import Database
from tests.channels.support import free_port, http_server, smtp_server
from tests.pages.conftest import texts

PAGE = "pages/settings.py"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def configure(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(f"AUTOMATIONS_{name.upper()}", value)
    get_settings.cache_clear()


def send_test(at: AppTest, channel: str, to: str) -> AppTest:
    at.radio(key="test_channel").set_value(channel).run()
    at.text_input(key=f"test_to_{channel}").input(to)
    [send] = [b for b in at.button if b.label == "Send test"]
    send.click().run()
    assert not at.exception, at.exception
    return at


def test_channels_and_configuration_are_plain_text_and_titled_columns(app_db: Database, open_page) -> None:
    at = open_page(PAGE)
    assert not at.metric  # no value cut short in metric-size text
    shown = texts(at)
    assert "**Email**" in shown and "Outbox folder" in shown and "**Webhook**" in shown
    [path] = at.code
    assert path.value == str(get_settings().outbox_dir.resolve())
    [table] = at.dataframe
    columns = json.loads(table.proto.columns)
    assert columns["variable"]["label"] == "Environment variable" and columns["value"]["label"] == "Value"
    assert at.radio(key="test_channel").options == ["Email", "SMS", "Webhook"]


def test_test_email_reaches_the_smtp_server(app_db: Database, open_page, monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server() as (sink, port):
        configure(monkeypatch, smtp_host="127.0.0.1", smtp_port=str(port))
        at = send_test(open_page(PAGE), "email", "me@example.com")
    assert [s.value for s in at.success] == ["Sent: sent via SMTP to me@example.com."]
    assert sink.messages[0]["To"] == "me@example.com"


def test_test_webhook_is_signed_and_reaches_the_server(
    app_db: Database, open_page, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loopback is a private address: the runner's setting lets it through here.
    configure(monkeypatch, webhook_allow_private="1", webhook_secret=SECRET)
    with http_server() as sink:
        at = send_test(open_page(PAGE), "webhook", sink.url("/hooks/T0KEN?sig=abc"))
    [request] = sink.requests
    assert request.method == "POST" and request.path == "/hooks/T0KEN?sig=abc"
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["event"] == "automation.test" and payload["data"]["test"] is True
    assert request.headers["webhook-id"].startswith("test-")
    [success] = at.success
    assert success.value == "Sent: delivered (HTTP 200) at 127.0.0.1."
    assert "T0KEN" not in texts(at)  # a URL's path may be a token: never shown


def test_a_refused_address_says_why_and_sends_nothing(
    app_db: Database, open_page, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, webhook_secret=SECRET)  # private targets refused, the default
    with http_server() as sink:
        at = send_test(open_page(PAGE), "webhook", sink.url("/hooks/T0KEN"))
        [error] = at.error
        assert error.value == (
            "Not sent: this URL is refused: it targets 127.0.0.1, a loopback address. As for the runner, "
            "webhooks go only to public addresses unless AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE=1 is set."
        )
        at = send_test(at, "webhook", "http://10.1.2.3/hook")
        assert "10.1.2.3, a private network address" in at.error[0].value
        at = send_test(at, "webhook", "ftp://example.com/hook")
        assert at.error[0].value == "Not sent: the URL must be an http:// or https:// URL."
    assert sink.requests == []
    assert SECRET not in texts(at) and "T0KEN" not in texts(at)


def test_an_unreachable_webhook_says_so_in_plain_words(
    app_db: Database, open_page, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, webhook_allow_private="1", webhook_timeout="2")
    at = send_test(open_page(PAGE), "webhook", f"http://127.0.0.1:{free_port()}/hooks/T0KEN")
    [error] = at.error
    assert error.value.startswith("Not sent: webhook unreachable") and "T0KEN" not in error.value
    # The signing secret was generated and stored for the test: the page says so from then on.
    assert "Signing secret generated and stored in the database" in texts(at.run())
