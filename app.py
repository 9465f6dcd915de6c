"""The dashboard's router: page setup, the login gate, and the navigation.

Run with `streamlit run app.py`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from ui.common import settings, signed_in
from ui.signin import SignInThrottle

HERE = Path(__file__).parent

# The icon is a file served by the dashboard itself: a Material icon name would make the
# browser fetch it from Google Fonts, and offline there would be none.
st.set_page_config(page_title="Automations", page_icon=str(HERE / "ui/assets/favicon.png"), layout="wide")


@st.cache_resource
def _throttle() -> SignInThrottle:
    """One per dashboard process: the waits hold across sessions and reloads."""
    return SignInThrottle()


def _client() -> str:
    """Who is trying: the browser's address (a proxy's forwarded one when there is one)."""
    forwarded = st.context.headers.get("X-Forwarded-For")
    if isinstance(forwarded, str) and forwarded:
        return forwarded.split(",")[0].strip()
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "unknown"


def _login() -> None:
    """The only page before sign-in: every other page and URL leads here."""
    secret = settings().ui_password
    assert secret is not None
    st.title("Automations")
    if st.session_state.pop("session_expired", False):
        st.info("Your session expired: sign in again.")
    with st.form("login"):
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    client, now = _client(), time.monotonic()
    wait = _throttle().wait_for(client, now)
    if wait > 0:
        st.error(f"Too many wrong passwords: wait {wait:.0f} s before the next try.")
        return
    # Constant-time comparison: the time taken says nothing about the password.
    if hmac.compare_digest(password.encode(), secret.get_secret_value().encode()):
        _throttle().succeeded(client)
        st.session_state["signed_in_at"] = time.time()
        st.rerun()
    delay = _throttle().failed(client, now)
    st.error(f"Wrong password. Wait {delay:.0f} s before the next try.")


# Every page of the app: (file, title, icon); the first is the landing page.
PAGES = [
    ("pages/overview.py", "Overview", ":material/home:"),
    ("pages/campaigns.py", "Campaigns", ":material/list_alt:"),
    ("pages/new_campaign.py", "New Campaign", ":material/add_circle:"),
    ("pages/templates.py", "Templates", ":material/extension:"),
    ("pages/calendar.py", "Calendar", ":material/calendar_month:"),
    ("pages/statistics.py", "Statistics", ":material/bar_chart:"),
    ("pages/rules.py", "Rules", ":material/rule:"),
    ("pages/followups.py", "Follow-ups", ":material/notifications:"),
    ("pages/contacts.py", "Contacts", ":material/group:"),
    ("pages/settings.py", "Settings", ":material/settings:"),
]


def _pages() -> list[st.Page]:
    return [
        st.Page(file, title=title, icon=icon, default=i == 0)
        for i, (file, title, icon) in enumerate(PAGES)
        if (HERE / file).exists()
    ]


def _sign_in_pages() -> list[st.Page]:
    """Before sign-in every page's URL shows the sign-in form (a bookmark is not
    "page not found"), and after it the page asked for."""

    def form_at(stem: str) -> Callable[[], None]:
        def sign_in() -> None:
            _login()

        sign_in.__name__ = sign_in.__qualname__ = f"sign_in_{stem}"  # one page per URL
        return sign_in

    files = [file for file, _, _ in PAGES if (HERE / file).exists()]
    # The landing page is at "/" (its own path would collide with the Overview's).
    pages = [st.Page(form_at("home"), title="Sign in", icon=":material/lock:", default=True)]
    pages += [
        st.Page(form_at(Path(file).stem), title="Sign in", icon=":material/lock:", url_path=Path(file).stem)
        for file in files[1:]
    ]
    return pages


# The router always builds the navigation, so Streamlit never lists the files of
# pages/ on its own; before sign-in it holds nothing but the sign-in form.
if signed_in():
    st.navigation(_pages()).run()
else:
    st.navigation(_sign_in_pages(), position="hidden").run()
