"""Settings: the effective configuration (secrets masked), the active channels, and a
test message."""

from __future__ import annotations

import streamlit as st

from automations.domain.config import describe_settings
from ui.common import get_db, page_title, settings

page_title(":material/settings: Settings")
config = settings()
st.caption("Set with `AUTOMATIONS_*` environment variables (or a `.env` file) and restart to change.")
c1, c2, c3 = st.columns(3)
c1.metric(
    "Email",
    "SMTP" if config.email_backend == "smtp" else "Outbox folder",
    help=f"{config.smtp_host}:{config.smtp_port or ''}" if config.smtp_host else None,
)
c2.metric("SMS", "HTTP API" if config.sms_backend == "http" else "Outbox folder")
c3.metric("Display timezone", config.timezone)
if "outbox" in (config.email_backend, config.sms_backend):
    st.info(
        f"Messages without a configured provider are written to the outbox folder `{config.outbox_dir.resolve()}`.",
        icon=":material/folder:",
    )

st.subheader("Effective configuration")
st.dataframe(describe_settings(config), hide_index=True, width="stretch")

st.subheader("Send a test message")
try:
    from automations.channels import send_test_message
except ImportError:  # the channels ship with the runner
    send_test_message = None
if send_test_message is None:
    st.info("Test messages become available with the runner's channels.", icon=":material/info:")
else:
    with st.form("test_message"):
        channel = st.radio("Channel", ["email", "sms"], horizontal=True)
        to = st.text_input("To", placeholder="you@example.com or +14155550123")
        if st.form_submit_button("Send test", type="primary"):
            try:
                outcome = send_test_message(config, get_db(), channel, to)
            except Exception as exc:  # shown to the user; the message never contains secrets
                st.error(f"Not sent: {exc}")
            else:
                st.success(f"Sent: {outcome}")
