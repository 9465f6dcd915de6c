"""Settings: the effective configuration (secrets masked), the active channels, and a
test message."""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from automations.channels import TEST_CHANNELS, DeliveryFailed, send_test_message, webhook_secret_is_set
from automations.domain.config import Settings, describe_settings
from automations.domain.errors import ValidationError
from ui.common import LIST_TTL, clear_reads, db_url, get_db, page_title, settings, type_label

log = logging.getLogger(__name__)

# What the test message's "To" field asks for, per channel: (label, placeholder).
RECIPIENT = {
    "email": ("Email address", "you@example.com"),
    "sms": ("Phone number (E.164)", "+14155550123"),
    "webhook": ("Webhook URL", "https://example.com/hooks/automations"),
}


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _secret_is_set(url: str) -> bool:
    with get_db().read_session() as s:
        return webhook_secret_is_set(s, settings())


def _channel(column: DeltaGenerator, title: str, what: str, details: str) -> None:
    with column:
        st.markdown(f"**{title}**  \n{what}")
        st.caption(details)


def _channels(config: Settings) -> None:
    st.subheader("Channels")
    email, sms, webhook, zone = st.columns(4)
    if config.email_backend == "smtp":
        security = "SSL" if config.smtp_ssl else "STARTTLS" if config.smtp_starttls else "no encryption"
        port = f":{config.smtp_port}" if config.smtp_port else ""
        _channel(email, "Email", "SMTP server", f"{config.smtp_host}{port}, {security}; from {config.email_from}")
    else:
        _channel(email, "Email", "Outbox folder", "One `.eml` file per message (no SMTP server is set)")
    if config.sms_backend == "http":
        _channel(sms, "SMS", "HTTP messages API", f"From {config.sms_from or 'the account default'}")
    else:
        _channel(sms, "SMS", "Outbox folder", "One JSON line per message (no SMS API is set)")
    if config.webhook_secret is not None and config.webhook_secret.get_secret_value():
        secret = "Signing secret from AUTOMATIONS_WEBHOOK_SECRET"
    elif _secret_is_set(db_url()):
        secret = "Signing secret generated and stored in the database"
    else:
        secret = "Signing secret generated on first use"
    private = "allowed" if config.webhook_allow_private else "refused"
    _channel(
        webhook,
        "Webhook",
        "Signed HTTP POST (Standard Webhooks)",
        f"{secret}; private-network targets {private}; timeout {config.webhook_timeout:g} s",
    )
    _channel(zone, "Display timezone", config.timezone, "Times are stored in UTC and shown in this timezone")
    if "outbox" in (config.email_backend, config.sms_backend):
        st.markdown("**Outbox folder**: messages without a configured provider are written to")
        st.code(str(config.outbox_dir.resolve()), language=None, wrap_lines=True)


def _test_message(config: Settings) -> None:
    st.subheader("Send a test message")
    channel = st.radio("Channel", TEST_CHANNELS, horizontal=True, format_func=type_label, key="test_channel")
    if channel == "webhook":
        st.caption(
            "A JSON POST with the event `automation.test`, signed like the runner's webhooks. "
            "As for the runner, private and loopback addresses are refused unless "
            "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE=1 is set."
        )
    label, placeholder = RECIPIENT[channel]
    with st.form("test_message"):
        # One field per channel, so that each keeps what was typed in it.
        to = st.text_input(label, placeholder=placeholder, key=f"test_to_{channel}")
        submitted = st.form_submit_button("Send test", type="primary")
    if not submitted:
        return
    try:
        outcome = send_test_message(config, get_db(), channel, to)
    except ValidationError as exc:
        st.error(f"Not sent: {'; '.join(exc.errors.values())}.")
    except DeliveryFailed as exc:
        st.error(f"Not sent: {exc}.")
    except Exception as exc:  # an unexpected failure: its text could quote a setting, so only its kind is shown
        log.exception("test message failed")
        st.error(f"Not sent: an unexpected error ({type(exc).__name__}); the dashboard's log has the details.")
    else:
        st.success(f"Sent: {outcome}.")
    if channel == "webhook":
        clear_reads()  # a first webhook stores the signing secret


page_title(":material/settings: Settings")
config = settings()
st.caption("Set with `AUTOMATIONS_*` environment variables (or a `.env` file) and restart to change.")
_channels(config)
st.subheader("Effective configuration")
st.dataframe(
    describe_settings(config),
    hide_index=True,
    width="stretch",
    column_config={
        "variable": st.column_config.TextColumn("Environment variable"),
        "value": st.column_config.TextColumn("Value"),
    },
)
_test_message(config)
