"""Script time of every dashboard page on a large database, measured with AppTest.

    python -m automations demo --contacts 100000        # ~1,000,000 steps
    python bench/bench_pages.py [--runs 5]

Uses AUTOMATIONS_DATABASE_URL (default: the embedded database). Prints, per page,
the first run and the median and worst of the following runs.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from automations.domain.db import Database  # noqa: E402
from automations.domain.models import AutomationCampaign, AutomationStep, Contact  # noqa: E402

# AppTest runs outside a server; Streamlit's warnings about that are noise here.
for _name in ("streamlit.runtime.caching.cache_data_api", "streamlit.runtime.scriptrunner_utils.script_run_context"):
    logging.getLogger(_name).addFilter(lambda record: record.levelno >= logging.ERROR)

PAGES = [
    "overview",
    "campaigns",
    "new_campaign",
    "templates",
    "followups",
    "contacts",
    "settings",
    "calendar",
    "statistics",
    "rules",
]


def _timed(at: AppTest, cold: bool = False) -> float:
    if cold:
        st.cache_data.clear()  # every run reads the database, as when the cached reads expire
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise SystemExit(f"the page failed: {at.exception[0].message}")
    return elapsed


def bench(name: str, runs: int, setup: object = None, cold: bool = False) -> tuple[float, float, float]:
    st.cache_data.clear()  # the first run reads the database, cold
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if name != "overview":
        at.switch_page(f"pages/{name}.py")
    first = _timed(at)
    if callable(setup):
        setup(at)
        first = _timed(at)
    later = [_timed(at, cold) for _ in range(runs)]
    return first, statistics.median(later), max(later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pages", nargs="*", default=PAGES, help="which pages (default: all)")
    parser.add_argument(
        "--cold", action="store_true", help="clear the cached reads before every run (time the queries, not the cache)"
    )
    args = parser.parse_args()
    db = Database()
    with db.read_session() as s:
        counts = [s.scalar(select(func.count()).select_from(m)) for m in (Contact, AutomationCampaign, AutomationStep)]
    print(
        f"database: {db.settings.database_url} · {counts[0]:,} contacts, {counts[1]:,} campaigns, {counts[2]:,} steps"
    )
    print(f"{'page':<28}{'first run':>12}{'median':>10}{'worst':>10}   (seconds, {args.runs} runs after the first)")
    cases: list[tuple[str, str, object]] = [(p, p, None) for p in args.pages if (ROOT / "pages" / f"{p}.py").exists()]
    if "campaigns" in args.pages:
        cases.append(
            (
                "campaigns (one opened)",
                "campaigns",
                # As a click on the first row of the list does.
                lambda at: at.session_state.__setitem__(
                    at.session_state["camp_list_widget"], {"selection": {"rows": [0], "columns": [], "cells": []}}
                ),
            )
        )
        cases.append(
            ("campaigns (filtered)", "campaigns", lambda at: at.selectbox(key="camp_status").set_value("paused"))
        )
    worst_median = 0.0
    for label, page, setup in cases:
        first, median, worst = bench(page, args.runs, setup, args.cold)
        worst_median = max(worst_median, median)
        flag = "" if median < 0.5 else "   SLOW"
        print(f"{label:<28}{first:>12.3f}{median:>10.3f}{worst:>10.3f}{flag}")
    print(f"slowest median: {worst_median:.3f} s")


if __name__ == "__main__":
    main()
