"""The runner and the scheduling rules: order within a campaign, pause/resume,
cancel, late steps shifting later ones, completion, leases and lost claims, the
heartbeat, and `python runner.py --once`."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import AutomationCampaign, ContactEvent
from automations.runner.engine import Runner
from automations.runner.heartbeat import runner_statuses
from automations.services.campaigns import (
    cancel_campaign,
    pause_campaign,
    resume_campaign,
)
from tests.channels.support import (
    Reply,
    add_campaign,
    add_contact,
    http_server,
    steps_and_attempts,
)
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parents[2]


def task(name: str, days: int = 0, hours: int = 0) -> dict[str, object]:
    return {"name": name, "message_type": "task", "subject": name, "delay_days": days, "delay_hours": hours}


def runner(db: Database, **kwargs: object) -> Runner:
    settings = kwargs.pop("settings", None) or Settings(
        _env_file=None, webhook_allow_private=True, webhook_secret="whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="
    )
    return Runner(db, settings, rng=random.Random(5), **kwargs)  # type: ignore[arg-type]


def campaign_status(db: Database, campaign_id: int) -> str:
    with db.read_session() as s:
        return s.get(AutomationCampaign, campaign_id).status


def test_overdue_steps_run_at_once_in_order_and_complete_the_campaign(db: Database) -> None:
    contact = add_contact(db, NOW)
    cid = add_campaign(
        db, contact, [task("a"), task("b", hours=1), task("c", hours=1)], start_at=NOW - timedelta(days=1), now=NOW
    )
    r = runner(db, batch_size=1)
    summary = r.tick(NOW)
    r.close()
    steps, attempts = steps_and_attempts(db)
    assert [s.status for s in steps] == ["done", "done", "done"]
    assert [a.step_id for a in attempts] == [s.id for s in steps]  # in order
    assert summary.executed == 3
    assert campaign_status(db, cid) == "completed"
    with db.read_session() as s:
        kinds = [e.kind for e in s.scalars(select(ContactEvent).order_by(ContactEvent.id))]
    assert kinds[-1] == "campaign_completed"


def test_next_step_waits_while_the_previous_one_retries(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW)
    with http_server() as sink:
        sink.on("/hook", Reply(503), Reply(503))
        add_campaign(
            sqlite_db,
            contact,
            [
                {"name": "ping", "message_type": "webhook", "webhook_url": sink.url()},
                task("after"),
            ],
            start_at=NOW,
            now=NOW,
        )
        r = runner(sqlite_db)
        r.tick(NOW)
        steps, _ = steps_and_attempts(sqlite_db)
        assert [s.status for s in steps] == ["pending", "pending"]
        r.tick(steps[0].due_at - timedelta(seconds=1))  # still in backoff: nothing runs
        assert len(sink.requests) == 1
        r.tick(steps[0].due_at)
        steps, _ = steps_and_attempts(sqlite_db)
        r.tick(steps[0].due_at)
        r.close()
    steps, attempts = steps_and_attempts(sqlite_db)
    assert [s.status for s in steps] == ["sent", "done"]
    assert [a.outcome for a in attempts] == ["retry", "retry", "sent", "done"]


def test_paused_campaign_does_not_run_and_resume_shifts_it(db: Database) -> None:
    contact = add_contact(db, NOW)
    cid = add_campaign(db, contact, [task("a", hours=1), task("b", days=1)], start_at=NOW, now=NOW)
    with db.session() as s:
        pause_campaign(s, cid, now=NOW + timedelta(minutes=30))
    r = runner(db)
    r.tick(NOW + timedelta(hours=5))
    steps, _ = steps_and_attempts(db)
    assert [s.status for s in steps] == ["pending", "pending"]
    with db.session() as s:
        resume_campaign(s, cid, now=NOW + timedelta(hours=2, minutes=30))
    steps, _ = steps_and_attempts(db)
    assert steps[0].scheduled_at == NOW + timedelta(hours=3)  # moved by the 2 h pause
    r.tick(NOW + timedelta(hours=2, minutes=59))
    assert [s.status for s in steps_and_attempts(db)[0]] == ["pending", "pending"]
    r.tick(NOW + timedelta(hours=3))
    r.close()
    assert [s.status for s in steps_and_attempts(db)[0]] == ["done", "pending"]


def test_canceled_campaign_never_runs(db: Database) -> None:
    contact = add_contact(db, NOW)
    cid = add_campaign(db, contact, [task("a"), task("b")], start_at=NOW, now=NOW)
    with db.session() as s:
        cancel_campaign(s, cid, now=NOW)
    r = runner(db)
    assert r.tick(NOW + timedelta(days=3)).executed == 0
    r.close()
    assert [s.status for s in steps_and_attempts(db)[0]] == ["canceled", "canceled"]


def test_a_late_step_moves_the_following_steps_keeping_the_gaps(db: Database) -> None:
    contact = add_contact(db, NOW)
    add_campaign(db, contact, [task("a"), task("b", days=2), task("c", hours=3)], start_at=NOW, now=NOW)
    r = runner(db)
    r.tick(NOW + timedelta(hours=6))  # the runner was down for 6 hours
    r.close()
    steps, _ = steps_and_attempts(db)
    assert steps[0].status == "done"
    assert steps[1].scheduled_at == NOW + timedelta(days=2, hours=6)
    assert steps[2].scheduled_at - steps[1].scheduled_at == timedelta(hours=3)


def test_lost_claim_cannot_overwrite_the_runner_that_took_over(db: Database) -> None:
    contact = add_contact(db, NOW)
    add_campaign(db, contact, [task("a")], start_at=NOW, now=NOW)
    slow = runner(db, runner_id="slow", lease_seconds=60)
    jobs = slow.claim(NOW)
    assert len(jobs) == 1
    fast = runner(db, runner_id="fast", lease_seconds=60)
    assert fast.claim(NOW + timedelta(seconds=30)) == []  # the lease still holds
    taken = fast.claim(NOW + timedelta(seconds=61))  # lease expired: taken over
    assert len(taken) == 1 and taken[0].attempt_no == 2
    assert taken[0].idempotency_key == jobs[0].idempotency_key
    late = slow.record(slow.execute(jobs), NOW + timedelta(seconds=62))
    assert late.lost == [jobs[0].step_id]
    steps, _ = steps_and_attempts(db)
    assert steps[0].status == "running" and steps[0].claimed_by == "fast"
    fast.record(fast.execute(taken), NOW + timedelta(seconds=63))
    slow.close(), fast.close()
    steps, attempts = steps_and_attempts(db)
    assert steps[0].status == "done"
    assert [(a.runner_id, a.outcome) for a in attempts] == [("slow", "retry"), ("slow", "done"), ("fast", "done")]
    assert "not recorded" in (attempts[1].detail or "")
    with db.read_session() as s:
        from automations.domain.models import ScheduledFollowUp

        assert len(s.scalars(select(ScheduledFollowUp)).all()) == 1


def test_heartbeat_shows_alive_runners(db: Database) -> None:
    r = runner(db, runner_id="box:1")
    r.tick(NOW)
    r.close()
    with db.read_session() as s:
        [status] = runner_statuses(s, NOW + timedelta(seconds=10))
        assert status.runner_id == "box:1" and status.alive and status.last_tick_at == NOW
        [status] = runner_statuses(s, NOW + timedelta(minutes=5))
        assert not status.alive


def test_once_executes_due_steps_and_exits_zero(tmp_path: Path, sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW)
    add_campaign(
        sqlite_db,
        contact,
        [task("a"), {"name": "mail", "message_type": "email", "subject": "Hi", "body": "secret body text"}],
        start_at=NOW - timedelta(hours=1),
        now=NOW - timedelta(hours=1),
    )
    env = {**os.environ, "AUTOMATIONS_DATABASE_URL": sqlite_db.url, "AUTOMATIONS_OUTBOX_DIR": str(tmp_path / "box")}
    done = subprocess.run(
        [sys.executable, "runner.py", "--once"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    steps, _ = steps_and_attempts(sqlite_db)
    assert [s.status for s in steps] == ["done", "sent"]
    assert f"step {steps[1].id} (email" in done.stderr and "tick: 2 step(s)" in done.stderr
    assert "secret body text" not in done.stderr  # message bodies are never logged


def test_heartbeat_counts_steps_and_keeps_the_last_error(sqlite_db: Database) -> None:
    contact = add_contact(sqlite_db, NOW)
    add_campaign(sqlite_db, contact, [task("a"), task("b")], start_at=NOW, now=NOW)
    r = runner(sqlite_db, runner_id="box:2")

    def broken(_now: object) -> None:
        raise RuntimeError("rules table unavailable")

    r.tick_jobs.append(("broken", broken))
    summary = r.tick(NOW)  # a failing job is logged and the tick goes on
    r.tick(NOW + timedelta(seconds=5))
    r.close()
    assert summary.executed == 2 and summary.errors
    with sqlite_db.read_session() as s:
        [status] = runner_statuses(s, NOW + timedelta(seconds=6))
    assert status.steps_done == 2
    assert "rules table unavailable" in (status.last_error or "")
    assert status.last_tick_at == NOW + timedelta(seconds=5)


def test_a_recording_repeated_after_a_lost_answer_logs_the_attempt_once(db: Database) -> None:
    """The commit went through but the runner did not hear so (connection cut) and
    records again: the step stays done, with one attempt, and nothing is 'lost'."""
    contact = add_contact(db, NOW)
    add_campaign(db, contact, [task("a")], start_at=NOW, now=NOW)
    r = runner(db, runner_id="solo")
    results = r.execute(r.claim(NOW))
    first = r.record(results, NOW)
    again = r.record(results, NOW)
    r.close()
    steps, attempts = steps_and_attempts(db)
    assert first.final == {steps[0].id: "done"} and again.lost == []
    assert [(a.runner_id, a.outcome) for a in attempts] == [("solo", "done")]
