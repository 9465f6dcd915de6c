"""What every page shares: the cached database, the settings, small render helpers.

Pages call `automations` through these; no SQL or business rules live here.
"""

from __future__ import annotations

import streamlit as st

from automations.config import Settings, get_settings
from automations.db import Database


@st.cache_resource(show_spinner=False)
def _database(url: str) -> Database:
    return Database(url)


def settings() -> Settings:
    return get_settings()


def get_db() -> Database:
    """The process's database (one engine per URL, shared across reruns and sessions)."""
    return _database(get_settings().database_url)


def clear_reads() -> None:
    """Forget cached reads after a write, so every page shows the change."""
    st.cache_data.clear()
