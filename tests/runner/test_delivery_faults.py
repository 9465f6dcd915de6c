"""Delivery under faults (SPEC section 9), with real runner processes against
real servers on loopback: a slow SMTP relay, database connections terminated
while recording, a SQLite writer holding the lock, runners killed over and over,
SIGTERM with deliveries hanging. Every step is delivered exactly once, except a
step whose runner was killed between sending and recording, whose repeat carries
the same key."""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from automations.domain.db import Database
from automations.domain.models import AutomationStep, StepAttempt
from automations.domain.timeutil import utcnow
from tests.channels.support import Reply, bulk_due_steps, http_server, smtp_server, sqlite_write_lock
from tests.conftest import POSTGRES_URL
from tests.runner.support import open_steps, start_runner, statuses, step_keys, stop_all, wait_until, webhook_ids


def assert_each_once(received: collections.Counter[str], db: Database, message_type: str) -> None:
    keys = step_keys(db, message_type)
    assert set(received) == keys, f"{len(keys - set(received))} never delivered"
    repeats = {key: n for key, n in received.items() if n > 1}
    assert repeats == {}, f"{len(repeats)} delivered more than once"


# --- slow SMTP relay ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "count", "delay", "args"),
    [
        # Default options: 40 emails, 16 at a time, 12 s each: the batch takes 36 s,
        # longer than the 30 s lease, so only renewal keeps the claim.
        ("sqlite", 40, 12.0, ()),
        # The same shape at a smaller scale: a 3 s lease, 2 at a time, 1.5 s each.
        ("postgresql", 12, 1.5, ("--lease", "3", "--concurrency", "2", "--interval", "0.5")),
    ],
)
def test_a_slow_smtp_relay_gets_every_email_once(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, count: int, delay: float, args: tuple[str, ...]
) -> None:
    db: Database = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_db")
    with smtp_server() as (sink, port):
        sink.delay = delay
        bulk_due_steps(db, count, "email", utcnow() - timedelta(seconds=1))
        env = {"AUTOMATIONS_SMTP_HOST": "127.0.0.1", "AUTOMATIONS_SMTP_PORT": str(port)}
        runners = [start_runner(db.url, tmp_path, f"r{i}", *args, env=env) for i in range(2)]
        wait_until(lambda: open_steps(db) == 0, count / 2 * delay + 90, "every email to be recorded")
        assert stop_all(runners) == [0, 0]
        received = collections.Counter(sink.message_ids())
    with db.read_session() as s:
        keys = list(s.scalars(select(AutomationStep.idempotency_key)))
        expired = s.scalar(select(func.count()).select_from(StepAttempt).where(StepAttempt.detail.like("%lease%")))
    assert all(any(key in message_id for message_id in received) for key in keys)  # Message-ID holds the key
    assert len(received) == count and set(received.values()) == {1}, received.most_common(3)
    assert statuses(db) == {"sent": count}
    assert expired == 0  # no claim was ever taken from a live runner


# --- the database misbehaving while results are recorded ---------------------------


@pytest.mark.slow
def test_postgresql_connections_terminated_while_recording_repeat_nothing(
    pg_db: Database, pg_schema: str, tmp_path: Path
) -> None:
    name = f"faulty_{os.getpid()}"
    url = f"{pg_schema}&application_name={name}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    terminated = 0
    with http_server() as sink:
        sink.on("/hook", *[Reply(200, delay=0.02) for _ in range(400)])
        bulk_due_steps(pg_db, 400, "webhook", utcnow() - timedelta(seconds=1), url=sink.url())
        runners = [
            start_runner(
                url, tmp_path, f"r{i}", "--batch-size", "50", "--concurrency", "4", "--interval", "0.3", "--lease", "5"
            )
            for i in range(2)
        ]
        wait_until(lambda: len(sink.requests) >= 20, 30, "the runners to start sending")
        # Bursts of pg_terminate_backend on every connection of the runners, for 8 s.
        until = time.monotonic() + 8
        while time.monotonic() < until:
            with admin.connect() as conn:
                terminated += len(
                    conn.execute(
                        sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"),
                        {"n": name},
                    ).all()
                )
            time.sleep(random.uniform(0.05, 0.3))
        wait_until(lambda: open_steps(pg_db) == 0, 120, "every step to be recorded")
        assert stop_all(runners) == [0, 0]
        received = webhook_ids(sink)
    admin.dispose()
    assert terminated >= 5, "the bursts hit the runners' connections"
    assert_each_once(received, pg_db, "webhook")
    assert statuses(pg_db) == {"sent": 400}
    logs = "".join((tmp_path / f"r{i}.log").read_text() for i in range(2))
    # The bursts cut transactions in flight (not only idle pooled connections).
    signs = ("retrying", "tick job steps failed", "could not renew", "could not record the heartbeat")
    assert any(sign in logs for sign in signs), "the faults were seen"


@contextmanager
def sqlite_lock_holder(path: str, hold: float, pause: float) -> Iterator[list[int]]:
    """Another writer taking SQLite's write lock for `hold` s, every `pause` s."""
    done = threading.Event()
    held: list[int] = []

    def hold_lock() -> None:
        connection = sqlite3.connect(path, timeout=60, isolation_level=None)
        while not done.wait(pause):
            connection.execute("BEGIN IMMEDIATE")
            held.append(1)
            done.wait(hold)
            connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold_lock, daemon=True)
    thread.start()
    try:
        yield held
    finally:
        done.set()
        thread.join(timeout=30)


@pytest.mark.slow
def test_a_sqlite_writer_holding_the_lock_past_the_busy_timeout_repeats_nothing(
    sqlite_db: Database, tmp_path: Path
) -> None:
    path = sqlite_db.url.removeprefix("sqlite:///")
    with http_server() as sink:
        sink.on("/hook", *[Reply(200, delay=0.02) for _ in range(300)])
        bulk_due_steps(sqlite_db, 300, "webhook", utcnow() - timedelta(seconds=1), url=sink.url())
        env = {"AUTOMATIONS_SQLITE_BUSY_TIMEOUT": "1"}
        runner = start_runner(sqlite_db.url, tmp_path, "r0", "--batch-size", "50", "--concurrency", "4", env=env)
        wait_until(lambda: len(sink.requests) >= 10, 30, "the runner to start sending")
        with sqlite_lock_holder(path, hold=3.0, pause=1.0) as held:
            time.sleep(9)
        wait_until(lambda: open_steps(sqlite_db) == 0, 120, "every step to be recorded")
        assert stop_all([runner]) == [0]
        received = webhook_ids(sink)
    assert len(held) >= 2
    assert_each_once(received, sqlite_db, "webhook")
    assert statuses(sqlite_db) == {"sent": 300}
    log = (tmp_path / "r0.log").read_text()
    assert "database is locked" in log and "retrying" in log  # the lock was felt, and outlived


# --- kill storm -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "runners", "campaigns"), [("sqlite", 2, 300), ("postgresql", 4, 600)])
def test_a_kill_storm_loses_nothing_and_keeps_the_order_of_steps(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, runners: int, campaigns: int
) -> None:
    db: Database = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_db")
    rng = random.Random(11)
    args = ("--batch-size", "40", "--concurrency", "4", "--interval", "0.3", "--lease", "2")
    kills = 0
    with http_server() as sink:
        sink.on("/hook", *[Reply(200, delay=0.1) for _ in range(campaigns * 3)])
        bulk_due_steps(db, campaigns, "webhook", utcnow() - timedelta(seconds=1), url=sink.url(), steps_per_campaign=2)
        processes = [start_runner(db.url, tmp_path, f"r{i}", *args) for i in range(runners)]
        deadline = time.monotonic() + 180
        while open_steps(db) and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.8, 2.0))
            if kills < 8 and open_steps(db):
                i = rng.randrange(runners)
                processes[i].send_signal(signal.SIGKILL)
                processes[i].wait(timeout=10)
                kills += 1
                processes[i] = start_runner(db.url, tmp_path, f"r{i}", *args)
        wait_until(lambda: open_steps(db) == 0, 60, "the runners to drain every step")
        stop_all(processes)
        with sink.lock:
            arrivals = [r.headers["webhook-id"] for r in sink.requests]
    received = collections.Counter(arrivals)
    keys = step_keys(db, "webhook")
    assert set(received) == keys  # nothing lost, no key the steps do not have
    assert kills >= 4, "the storm hit the runners while they worked"
    with db.read_session() as s:
        rows = s.execute(select(AutomationStep.campaign_id, AutomationStep.position, AutomationStep.idempotency_key))
        by_campaign: dict[int, dict[int, str]] = collections.defaultdict(dict)
        for campaign_id, position, key in rows:
            by_campaign[campaign_id][position] = key
    first = {}
    last = {}
    for n, key in enumerate(arrivals):
        first.setdefault(key, n)
        last[key] = n
    out_of_order = [c for c, steps in by_campaign.items() if first[steps[1]] < last[steps[0]]]
    assert out_of_order == [], "step 2 went out before step 1 was final"
    assert statuses(db) == {"sent": 2 * campaigns}
    repeats = sum(n - 1 for n in received.values())
    # Only a step whose runner was killed between sending and recording is sent
    # again: its 4 deliveries in flight, and the results of the last 0.2 s not yet
    # recorded (about 8 at this pace). A repeat carries the step's own key.
    assert repeats <= kills * 16, repeats


# --- takeover time and SIGTERM -------------------------------------------------------


@pytest.mark.slow
def test_a_killed_runners_steps_are_taken_over_within_the_lease_plus_an_interval(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """Default options (lease 30 s, interval 5 s): target at most 45 s."""
    with http_server() as sink:
        sink.on("/hook", *[Reply(200, delay=120) for _ in range(16)])  # the doomed runner's deliveries hang
        bulk_due_steps(sqlite_db, 20, "webhook", utcnow() - timedelta(seconds=1), url=sink.url())
        doomed = start_runner(sqlite_db.url, tmp_path, "doomed")
        wait_until(lambda: len(sink.requests) >= 16, 30, "the doomed runner's deliveries")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        killed_at = time.monotonic()
        heir = start_runner(sqlite_db.url, tmp_path, "heir")
        wait_until(lambda: open_steps(sqlite_db) == 0, 60, "the heir to take every step over")
        takeover = time.monotonic() - killed_at
        assert stop_all([heir]) == [0]
        received = webhook_ids(sink)
    assert set(received) == step_keys(sqlite_db, "webhook")
    assert takeover <= 45, f"took {takeover:.1f}s"
    with sqlite_db.read_session() as s:
        details = s.scalars(select(StepAttempt.detail).where(StepAttempt.runner_id == "doomed")).all()
    assert details and all("runner doomed stopped renewing its claim" in d for d in details)
    (tmp_path / "takeover.txt").write_text(f"{takeover:.1f}\n")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigterm_finishes_deliveries_in_flight_and_gives_back_the_rest(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    db: Database = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_db")
    timeout = 3.0
    with http_server() as sink:
        sink.on("/hook", *[Reply(200, delay=30) for _ in range(16)])  # hangs past the timeout
        bulk_due_steps(db, 100, "webhook", utcnow() - timedelta(seconds=1), url=sink.url())
        env = {"AUTOMATIONS_WEBHOOK_TIMEOUT": str(timeout)}
        runner = start_runner(db.url, tmp_path, "first", env=env)
        wait_until(lambda: len(sink.requests) >= 16, 30, "16 deliveries in flight")
        sent_at = time.monotonic()
        runner.send_signal(signal.SIGTERM)
        code = runner.wait(timeout=60)
        exit_seconds = time.monotonic() - sent_at
        assert code == 0
        assert exit_seconds <= timeout + 5, f"exited after {exit_seconds:.1f}s"
        with db.read_session() as s:
            rows = s.execute(select(AutomationStep.status, AutomationStep.attempts)).all()
        released = [r for r in rows if r.status == "pending" and r.attempts == 0]
        # Every step not started is given back, its attempt not counted: 84 when the
        # 16 first deliveries were all that ran (one more may start in the moment a
        # slow one gives up before the signal lands).
        started = len(sink.requests)
        assert started >= 16 and len(released) == 100 - started
        assert not [r for r in rows if r.status == "running"]
        # Another runner takes the given-back steps at once, without waiting for a lease.
        began = time.monotonic()
        second = start_runner(db.url, tmp_path, "second", "--interval", "1", env=env)
        wait_until(lambda: statuses(db).get("sent", 0) >= len(released), 20, "the second runner to send the rest")
        assert time.monotonic() - began < 15
        assert stop_all([second]) == [0]
        received = webhook_ids(sink)
    assert len(received) == 100 and set(received.values()) == {1}
    log = (tmp_path / "first.log").read_text()
    assert f"gave back {len(released)} step(s) not yet started" in log


def test_a_runner_that_cannot_record_for_longer_than_its_lease_keeps_the_results_and_says_so(
    sqlite_db: Database,
) -> None:
    from automations.domain.config import Settings
    from automations.domain.models import RunnerHeartbeat
    from automations.runner.engine import Runner

    settings = Settings(_env_file=None, sqlite_busy_timeout=0.2)
    db = Database(sqlite_db.url, settings=settings)
    bulk_due_steps(db, 5, "task", utcnow() - timedelta(seconds=1))
    runner = Runner(db, settings, runner_id="stuck", lease_seconds=1)
    results = runner.execute(runner.claim(utcnow()))
    # The database "comes back" after 2.5 s, past the 1 s lease.
    with sqlite_write_lock(sqlite_db, release_after=2.5):
        recorded = runner.record(results, None)
    runner.tick()
    runner.close()
    assert sorted(recorded.final.values()) == ["done"] * 5 and recorded.lost == []
    assert statuses(db) == {"done": 5}
    with db.read_session() as s:
        beat = s.get(RunnerHeartbeat, "stuck")
        assert beat is not None and "cannot record results for" in (beat.last_error or "")
        assert "recorded after" in (beat.last_error or "")
    db.dispose()
