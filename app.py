"""The dashboard's router: page setup, the login gate, and the navigation.

Run with `streamlit run app.py`.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import streamlit as st

from ui.common import settings

HERE = Path(__file__).parent

st.set_page_config(page_title="Automations", page_icon=":material/forward_to_inbox:", layout="wide")


def _logged_in() -> bool:
    """When AUTOMATIONS_UI_PASSWORD is unset, or this session signed in already."""
    return settings().ui_password is None or bool(st.session_state.get("authenticated"))


def _login() -> None:
    """The only page before sign-in: every other page and URL leads here."""
    secret = settings().ui_password
    assert secret is not None
    st.title("Automations")
    with st.form("login"):
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        # Constant-time comparison: the time taken says nothing about the password.
        if hmac.compare_digest(password.encode(), secret.get_secret_value().encode()):
            st.session_state["authenticated"] = True
            st.rerun()
        st.error("Wrong password.")


def _pages() -> list[st.Page]:
    pages = [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("pages/campaigns.py", title="Campaigns", icon=":material/list_alt:"),
        st.Page("pages/new_campaign.py", title="New Campaign", icon=":material/add_circle:"),
        st.Page("pages/templates.py", title="Templates", icon=":material/extension:"),
    ]
    # Pages that ship separately appear once their file is there.
    for file, title, icon in (
        ("pages/calendar.py", "Calendar", ":material/calendar_month:"),
        ("pages/statistics.py", "Statistics", ":material/bar_chart:"),
        ("pages/rules.py", "Rules", ":material/rule:"),
    ):
        if (HERE / file).exists():
            pages.append(st.Page(file, title=title, icon=icon))
    pages += [
        st.Page("pages/followups.py", title="Follow-ups", icon=":material/notifications:"),
        st.Page("pages/contacts.py", title="Contacts", icon=":material/group:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ]
    return pages


# The router always builds the navigation, so Streamlit never lists the files of
# pages/ on its own; before sign-in the navigation holds the login form alone.
if _logged_in():
    st.navigation(_pages()).run()
else:
    st.navigation([st.Page(_login, title="Sign in", icon=":material/lock:")], position="hidden").run()
