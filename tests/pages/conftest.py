"""Page tests: each runs the real app (router included) with Streamlit's AppTest
against its own migrated database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from automations.cli.demo import fill_demo
from automations.domain.config import get_settings
from automations.domain.db import Database
from automations.services.seed import seed_system_templates

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_db(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The test's database, seeded with the system templates, as the app's database."""
    monkeypatch.setenv("AUTOMATIONS_DATABASE_URL", sqlite_db.url)
    get_settings.cache_clear()
    with sqlite_db.session() as s:
        seed_system_templates(s)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield sqlite_db
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def demo_db(app_db: Database) -> Database:
    fill_demo(app_db, contacts=60, seed=3, force=True)
    return app_db


@pytest.fixture
def open_page() -> Callable[[str], AppTest]:
    """Run the app and switch to `page` (a path like "pages/campaigns.py")."""

    def _open(page: str | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
        at.run()
        if page:
            at.switch_page(page)
            at.run()
        assert not at.exception, at.exception
        return at

    return _open


def texts(at: AppTest) -> str:
    """Everything the page shows as text (markdown, captions, alerts, metrics, titles)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning", "error", "toast"):
        parts.extend(str(el.value) for el in getattr(at, kind))
    parts.extend(f"{m.label} {m.value}" for m in at.metric)
    return "\n".join(parts)


def click_row(at: AppTest, table: str, row: int) -> AppTest:
    """Select row `row` of the clickable table `table` (as a click on it does) and rerun."""
    at.session_state[at.session_state[f"{table}_widget"]] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def row_of(at: AppTest, value: object, column: str = "id") -> int:
    """The row number of the first table row whose `column` is `value`."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            matches = list(frame.value[column]).index(value) if value in set(frame.value[column]) else None
            if matches is not None:
                return matches
    raise AssertionError(f"no row with {column} = {value!r}")
