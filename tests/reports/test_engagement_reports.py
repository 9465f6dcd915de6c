"""Engagement reports: the funnel per template and per step with its rates, machine
opens left out unless asked for, the clicks per link, the engagement timelines and
the `engagement` CSV export, on data built through the services."""

from __future__ import annotations

import io
from datetime import timedelta

import pandas as pd
import pytest

from automations.reports.engagement import (
    Rate,
    campaign_engagement,
    contact_engagement,
    describe,
    email_funnel,
    email_funnel_by_step,
    funnel_total,
    link_clicks,
)
from automations.reports.exports import COLUMNS, EXPORT_KINDS, ExportFilter, csv_bytes
from automations.reports.stats import StatsFilter
from automations.reports.timelines import campaign_detail, contact_timeline
from tests.reports.calendar_data import T0
from tests.reports.engagement_data import GUIDE, OFFER, WEEK, build_engagement

D = timedelta(days=1)


def counts(row) -> tuple[int, ...]:
    return (row.sent, row.delivered, row.opened, row.clicked, row.replied, row.bounced, row.unsubscribed)


def test_funnel_per_template_with_rates_and_their_denominators(db):
    built = build_engagement(db)
    with db.read_session() as s:
        onboarding, own = email_funnel(s, StatsFilter(*WEEK))
    # 7 emails sent in the week (5 welcomes, 2 tips); Cem's hard bounce leaves 6 delivered.
    assert (onboarding.template_id, onboarding.template_name) == (built.template_id, "Onboarding")
    assert counts(onboarding) == (7, 6, 3, 3, 1, 1, 1)
    rates = onboarding.rates()
    assert rates["opened"] == Rate(3, 6, "delivered") and rates["opened"].value == pytest.approx(0.5)
    assert rates["opened"].text == "3 of 6 delivered, 50%"
    assert rates["clicked"].text == "3 of 6 delivered, 50%"
    assert rates["click_to_open"].text == "3 of 3 opened, 100%"
    assert rates["replied"].text == "1 of 6 delivered, 17%"
    assert rates["bounced"].text == "1 of 7 sent, 14%"
    assert rates["unsubscribed"].text == "1 of 6 delivered, 17%"
    # The campaign made without a template is a row of its own, last.
    assert (own.template_id, own.template_name) == (None, None) and counts(own) == (1, 1, 1, 0, 0, 0, 0)
    assert counts(funnel_total([onboarding, own])) == (8, 7, 4, 3, 1, 1, 1)


def test_machine_opens_count_only_when_asked(db):
    build_engagement(db)
    with db.read_session() as s:
        people = email_funnel(s, StatsFilter(*WEEK))[0]
        with_machines = email_funnel(s, StatsFilter(*WEEK), machine_opens=True)[0]
        steps = email_funnel_by_step(s, StatsFilter(*WEEK), machine_opens=True)
    # Ben's welcome was fetched by a mail proxy only.
    assert (people.opened, with_machines.opened) == (3, 4)
    assert with_machines.rates()["opened"].text == "4 of 6 delivered, 67%"
    assert [(r.step, r.opened) for r in steps] == [("Welcome", 3), ("Tips", 1), ("Note", 1)]


def test_funnel_per_step_of_a_template(db):
    build_engagement(db)
    with db.read_session() as s:
        rows = email_funnel_by_step(s, StatsFilter(*WEEK))
    assert [(r.template_name, r.number, r.step) for r in rows] == [
        ("Onboarding", 1, "Welcome"),
        ("Onboarding", 2, "Tips"),
        (None, 1, "Note"),
    ]
    welcome, tips, _ = rows
    assert counts(welcome) == (5, 4, 2, 2, 1, 1, 1)
    assert counts(tips) == (2, 2, 1, 1, 0, 0, 0)
    assert welcome.rates()["opened"].text == "2 of 4 delivered, 50%"


def test_funnel_filters_range_template_and_message_type(db):
    built = build_engagement(db)
    with db.read_session() as s:
        everything = email_funnel(s)
        first_day = email_funnel(s, StatsFilter(T0, T0 + D))
        template_only = email_funnel(s, StatsFilter(*WEEK, template_id=built.template_id))
        sms_only = email_funnel(s, StatsFilter(*WEEK, message_type="sms"))
        emails_and_sms = email_funnel(s, StatsFilter(*WEEK, message_type=("sms", "email")))
        nothing = email_funnel(s, StatsFilter(T0 + 30 * D, T0 + 31 * D))
    # The whole history adds the welcome sent to Eve ten days before (opened, clicked).
    assert counts(everything[0]) == (8, 7, 4, 4, 1, 1, 1)
    # Counted by when the email was sent, whatever day its recipient answered.
    assert counts(first_day[0]) == (5, 4, 2, 2, 1, 1, 1)
    assert [r.template_name for r in template_only] == ["Onboarding"]
    assert sms_only == [] and nothing == []
    assert [counts(r) for r in emails_and_sms] == [(7, 6, 3, 3, 1, 1, 1), (1, 1, 1, 0, 0, 0, 0)]


def test_clicks_per_link(db):
    built = build_engagement(db)
    with db.read_session() as s:
        week = link_clicks(s, StatsFilter(*WEEK))
        ever = link_clicks(s)
        limited = link_clicks(s, limit=1)
    # Ann clicked the offer three times (twice in the welcome, once in the tips).
    assert [(r.template_id, r.url, r.clicks, r.recipients) for r in week] == [
        (built.template_id, OFFER, 3, 1),
        (built.template_id, GUIDE, 1, 1),
    ]
    assert (ever[0].url, ever[0].clicks, ever[0].recipients) == (OFFER, 4, 2)  # and Eve's, before the week
    assert len(limited) == 1


def test_engagement_in_words():
    assert describe("open", "Welcome", None, False, None) == "Opened “Welcome”"
    assert "mail-privacy proxy" in describe("open", "Welcome", None, True, None)
    assert describe("click", "Tips", OFFER, False, None) == f"Clicked {OFFER} in “Tips”"
    assert (
        describe("reply", "Welcome", None, False, {"first_lines": "Yes!\nCall me"})
        == "Replied to “Welcome”: Yes! Call me"
    )
    long = describe("reply", "Welcome", None, False, {"first_lines": "word " * 100})
    assert long.endswith("…") and len(long) < 240
    assert describe("auto_reply", "Welcome", None, False, {"return_on": "2026-03-09"}).endswith("back on 2026-03-09")
    assert describe("auto_reply", None, None, False, {}) == "Auto-replied to an email: no return date given"
    assert describe("bounce", "Welcome", None, False, {"hard": True, "status": "5.1.1"}) == (
        "Bounced (hard, 5.1.1): “Welcome”"
    )
    assert describe("bounce", "Welcome", None, False, {"hard": False}) == "Bounced (soft): “Welcome”"
    assert describe("unsubscribe", "Welcome", None, False, None) == "Unsubscribed from email (from “Welcome”)"
    assert (
        describe("unsubscribe", "Nudge", None, False, {"channel": "sms"}) == "Unsubscribed from SMS (answering “Nudge”)"
    )


def test_contact_timeline_shows_each_engagement_with_its_time(db):
    built = build_engagement(db)
    with db.read_session() as s:
        ann = contact_timeline(s, built.contacts["Ann"])
        dee = contact_engagement(s, built.contacts["Dee"])
        eve = contact_engagement(s, built.contacts["Eve"])
    engagement = [(e.when, e.status, e.what) for e in ann if e.kind == "engagement"]
    assert engagement[0] == (T0 + 2 * D, "replied", "Replied to “Welcome”: Thanks, this helps! See you Monday")
    assert (T0 + D + 2 * timedelta(hours=1), "clicked", f"Clicked {OFFER} in “Tips”") in engagement
    assert [e.status for e in ann if e.kind == "engagement"].count("clicked") == 3
    # Most recent first, steps and engagement together.
    assert [e.when for e in ann] == sorted((e.when for e in ann), reverse=True)
    assert {e.kind for e in ann} >= {"step", "engagement", "follow-up"}  # the reply made a follow-up
    assert [e.what for e in dee] == [
        "Unsubscribed from email (from “Welcome”)",
        "Bounced (soft, 4.2.2): “Welcome”",
        "Opened “Welcome”",
    ]
    assert "Auto-replied to “Welcome”: back on 2026-03-09" in [e.what for e in eve]
    assert all(e.campaign_name for e in eve)


def test_campaign_detail_shows_engagement_and_step_times(db):
    built = build_engagement(db)
    with db.read_session() as s:
        ann = campaign_detail(s, built.campaigns["Ann"])
        cem = campaign_engagement(s, built.campaigns["Cem"])
    welcome, tips = ann.steps
    assert welcome.opened_at == T0 + 2 * timedelta(hours=1) and welcome.replied_at == T0 + 2 * D
    assert welcome.clicked_at == T0 + 2 * timedelta(hours=1) + timedelta(minutes=1)
    assert tips.opened_at is not None and tips.bounced_at is None
    assert [e.label for e in ann.engagement] == ["replied", "clicked", "opened", "clicked", "clicked", "opened"]
    assert [e.step_name for e in ann.engagement][:2] == ["Welcome", "Tips"]
    assert [e.what for e in cem] == ["Bounced (hard, 5.1.1): “Welcome”"]


def frame(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8")


def test_engagement_export_has_one_row_per_event(db):
    built = build_engagement(db)
    assert "engagement" in EXPORT_KINDS
    with db.read_session() as s:
        everything = frame(csv_bytes(s, "engagement"))
        week = frame(csv_bytes(s, "engagement", ExportFilter(start=T0, end=T0 + 7 * D)))
        dee = frame(csv_bytes(s, "engagement", ExportFilter(contact_id=built.contacts["Dee"])))
        template = frame(csv_bytes(s, "engagement", ExportFilter(template_id=built.template_id, start=T0)))
        sms = frame(csv_bytes(s, "engagement", ExportFilter(message_type="sms")))
    assert tuple(everything.columns) == COLUMNS["engagement"]
    assert tuple(everything.columns)[:9] == (
        "occurred_at",
        "kind",
        "contact",
        "email",
        "campaign",
        "template",
        "step",
        "url",
        "machine",
    )
    assert len(everything) == 16 and len(week) == 14 and len(sms) == 0
    assert list(week["occurred_at"]) == sorted(week["occurred_at"])  # in time order
    assert list(dee["kind"]) == ["open", "bounce", "unsubscribe"]
    assert len(template) == 13  # the week's events but the own campaign's open
    first_click = week[week["kind"] == "click"].iloc[0]
    assert first_click["contact"] == "Ann Test" and first_click["email"] == "ann@example.com"
    assert (first_click["template"], first_click["step"], first_click["url"]) == ("Onboarding", "Welcome", OFFER)
    assert first_click["occurred_at"] == "2026-03-02T11:01:00+00:00" and first_click["machine"] == "false"
    assert week[week["kind"] == "open"].iloc[0]["machine"] == "true"  # Ben's proxy, kept and marked
    bounce = dee[dee["kind"] == "bounce"].iloc[0]
    assert '"hard": false' in bounce["detail"] and '"status": "4.2.2"' in bounce["detail"]
    # A campaign name a spreadsheet would run as a formula is neutralised.
    own = week[week["template"] == ""].iloc[0]
    assert own["campaign"] == "'=Personal note" and own["step"] == "Note"
