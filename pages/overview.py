"""Overview: today's figures, what runs next, what ran last, and runner health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st

from automations.domain.timeutil import utcnow
from automations.reports.overview import (
    OverviewFigures,
    RunnerState,
    SilentHolder,
    StepLine,
    latest_executions,
    next_scheduled_steps,
    overview_figures,
    runner_states,
    silent_holders,
)
from ui.common import (
    LIVE_SECONDS,
    READ_TTL,
    badge,
    db_url,
    fmt,
    get_db,
    page_title,
    rows,
    settings,
    silent_holder_text,
    status_label,
    type_label,
)
from ui.tables import clickable_table


@st.cache_data(ttl=READ_TTL, max_entries=20, show_spinner=False)
def _figures(url: str, now: datetime) -> OverviewFigures:
    with get_db().read_session() as s:
        return overview_figures(s, now, settings().tz)


@st.cache_data(ttl=READ_TTL, max_entries=20, show_spinner=False)
def _next(url: str, now: datetime) -> list[StepLine]:
    with get_db().read_session() as s:
        return next_scheduled_steps(s, now)


@st.cache_data(ttl=READ_TTL, max_entries=20, show_spinner=False)
def _latest(url: str, now: datetime) -> list[StepLine]:
    with get_db().read_session() as s:
        return latest_executions(s, now)


def _runners(runners: list[RunnerState]) -> int:
    """The runners' health; returns how many are alive."""
    alive = [r for r in runners if r.alive]
    if alive:
        latest = max(r.last_tick_at for r in alive)
        st.success(
            f"Runner alive: {len(alive)} running, last tick {fmt(latest, '%H:%M:%S')}.", icon=":material/check_circle:"
        )
    elif runners:
        st.warning(
            f"No runner has ticked recently (last tick {fmt(runners[0].last_tick_at)}). "
            "Scheduled steps are not being executed: start one with `python runner.py`.",
            icon=":material/error:",
        )
    else:
        st.warning(
            "No runner has ever ticked. Scheduled steps are not being executed: start one with `python runner.py`.",
            icon=":material/error:",
        )
    if runners:
        with st.expander(f"Runners ({len(runners)})"):
            st.dataframe(
                rows(
                    runners,
                    runner="runner_id",
                    host="host",
                    process="pid",
                    state=lambda r: "alive" if r.alive else ("stopped" if r.stopped_at else "silent"),
                    last_tick=lambda r: fmt(r.last_tick_at, "%Y-%m-%d %H:%M:%S"),
                    steps_done="steps_done",
                    last_error=lambda r: r.last_error or "",
                ),
                hide_index=True,
                width="stretch",
            )
    return len(alive)


def _overdue(figures: OverviewFigures, alive: int, silent: list[SilentHolder], now: datetime) -> None:
    """Where the steps past their time are: due now, waiting on a pause, or held by a silent runner."""
    held = sum(h.steps for h in silent)
    due, paused, stuck = st.columns(3)
    due.metric(
        "Due now",
        f"{figures.steps_overdue:,}",
        help="Pending steps of active campaigns whose time has come.",
    )
    if figures.steps_overdue:
        due.caption(
            "Being executed by the running runner, oldest first."
            if alive
            else "Not being executed: no runner is running."
        )
    paused.metric(
        "Waiting on paused campaigns",
        f"{figures.steps_waiting_on_paused:,}",
        help="Steps past their time in paused campaigns: they wait until the campaign is resumed "
        "(the gaps between steps are kept).",
    )
    stuck.metric(
        "Held by a silent runner",
        f"{held:,}",
        help="Steps a runner took and then stopped answering for (killed or cut off): "
        "another runner takes them over when their claims expire.",
    )
    for holder in silent:
        st.warning(silent_holder_text(holder, now), icon=":material/pending:")


def _step_table(lines: list[StepLine], when: str) -> None:
    """Steps with their campaign and contact; a click on one opens its campaign."""
    columns: dict[str, Any] = {
        "when": lambda line: fmt(line.executed_at if when == "executed" else line.scheduled_at),
        "status": lambda line: status_label(line.status),
        "type": lambda line: type_label(line.message_type),
        "step": "step_name",
        "campaign": "campaign_name",
        "contact": "contact_name",
    }
    if when == "executed":
        columns["error"] = lambda line: line.last_error or ""
    picked = clickable_table(
        f"ov_{when}",
        rows(lines, **columns),
        [line.campaign_id for line in lines],
        version=tuple(line.step_id for line in lines),
        height=38 + 35 * len(lines),
        column_config={"error": st.column_config.TextColumn(width="large")},
    )
    if picked is not None:
        st.session_state["camp_open"] = picked
        st.switch_page("pages/campaigns.py")


@st.fragment(run_every=LIVE_SECONDS)
def overview() -> None:
    """The whole page, read again every few seconds: the runner moves it on."""
    now = utcnow().replace(microsecond=0)
    figures = _figures(db_url(), now)
    with get_db().read_session() as s:
        runners = runner_states(s, now)
        silent = silent_holders(s, now)
    alive = _runners(runners)

    cols = st.columns(5)
    cols[0].metric("Active campaigns", f"{figures.active_campaigns:,}", help=f"{figures.paused_campaigns:,} paused")
    cols[1].metric("Steps due today", f"{figures.steps_due_today:,}", help="Pending steps planned for today")
    cols[2].metric(
        "Pending follow-ups", f"{figures.followups.pending:,}", help=f"{figures.followups.due_today:,} due later today"
    )
    cols[3].metric("Overdue follow-ups", f"{figures.followups.overdue:,}")
    rate = figures.success_rate
    cols[4].metric(
        "Success rate, 7 days",
        "—" if rate is None else f"{rate:.1%}",
        help=f"{figures.succeeded_last_7_days:,} sent or done, "
        f"{figures.failed_last_7_days:,} failed (skipped steps not counted)",
    )
    _overdue(figures, alive, silent, now)

    # One under the other, full width: every column readable.
    st.subheader("Next scheduled steps")
    st.caption("Click a step to open its campaign.")
    upcoming = _next(db_url(), now)
    if upcoming:
        _step_table(upcoming, "scheduled")
    else:
        st.info("Nothing is scheduled. Start one on **New Campaign**.", icon=":material/add_circle:")
    st.subheader("Latest executions")
    latest = _latest(db_url(), now)
    if latest:
        failures = sum(1 for line in latest if line.status == "failed")
        if failures:
            st.caption(f"{badge('failed')} {failures} failure(s) in the last 7 days are listed first.")
        _step_table(latest, "executed")
    else:
        st.info(
            "No step has run yet. Once a runner executes steps they appear here.", icon=":material/hourglass_empty:"
        )


page_title(":material/home: Overview")
overview()
