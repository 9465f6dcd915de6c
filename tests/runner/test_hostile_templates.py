"""Hostile templates against a real runner process (SPEC section 9): size bombs,
CPU bombs and deep recursion fail their own step with a reason a person
understands; the runner's memory stays small, it answers SIGTERM, and the other
steps go out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from automations.domain.db import Database
from automations.domain.models import AutomationStep
from automations.domain.timeutil import utcnow
from tests.channels.support import bulk_due_steps
from tests.runner.support import start_runner, statuses

ROOT = Path(__file__).resolve().parents[2]

NESTED_LOOPS = "{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}x"
BOMBS = {
    # (message type, subject, body): the reason the step fails with
    "email subject size bomb": (
        "email",
        "{{ 'a' * 10**9 }}",
        "Hi",
        "the subject grew past 998 characters while rendering",
    ),
    "email body output bomb": (
        "email",
        "Hi",
        "{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}",
        "the body grew past 1 MB while rendering",
    ),
    "sms size bomb": ("sms", "", "{{ 'a' * 10**9 }}", "the text grew past 1,600 characters while rendering"),
    "sms too long": ("sms", "", "{{ 'x' * 2000 }}", "the text grew past 1,600 characters while rendering"),
    "task cpu bomb": ("task", NESTED_LOOPS, "notes", "the title took longer than 250 ms to render"),
    "memory bomb": (
        "email",
        "Hi",
        "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "the body needed more memory than rendering allows",
    ),
    "deep recursion": (
        "email",
        "Hi",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
        "the body nests too deeply to render",
    ),
}


def add_bombs(db: Database) -> dict[str, str]:
    """One step per bomb, and 10 ordinary steps of each type around them."""
    due = utcnow() - timedelta(seconds=1)
    for message_type in ("email", "sms", "task"):
        bulk_due_steps(db, 10, message_type, due)
    for message_type, subject, body, _ in BOMBS.values():
        bulk_due_steps(db, 1, message_type, due, subject=subject, body=body)
    with db.read_session() as s:
        rows = s.execute(select(AutomationStep.id, AutomationStep.subject, AutomationStep.body)).all()
    ids = {}
    for name, (_, subject, body, _) in BOMBS.items():
        ids[name] = next(r.id for r in rows if r.subject == subject and r.body == body)
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bombs_fail_their_step_with_the_reason_and_the_rest_goes_out(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    db: Database = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_db")
    ids = add_bombs(db)
    # The runner under a parent that reports the largest resident size of the
    # runner and of every process it started (its render worker included).
    wrapper = (
        "import resource, subprocess, sys\n"
        "code = subprocess.call(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTOMATIONS_")},
        "AUTOMATIONS_DATABASE_URL": db.url,
        "AUTOMATIONS_OUTBOX_DIR": str(tmp_path / "box"),
        "AUTOMATIONS_SMS_QUIET_HOURS": "off",  # the suite runs at any hour (see tests/conftest.py)
    }
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "runner.py", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-3000:]
    peak_mb = int(done.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mb < 300, f"peak resident size {peak_mb:.0f} MB"
    assert seconds < 60
    with db.read_session() as s:
        steps = {
            row.id: row
            for row in s.execute(
                select(AutomationStep.id, AutomationStep.status, AutomationStep.attempts, AutomationStep.last_error)
            )
        }
    for name, step_id in ids.items():
        step = steps[step_id]
        assert step.status == "failed", name
        assert step.attempts == 1, f"{name}: a budget failure is permanent"
        assert BOMBS[name][3] in (step.last_error or ""), (name, step.last_error)
    assert statuses(db) == {"sent": 20, "done": 10, "failed": len(BOMBS)}
    # Nothing huge reached the outbox: the SMS log holds ten ordinary lines.
    lines = (tmp_path / "box" / "sms.jsonl").read_text().splitlines()
    assert len(lines) == 10 and max(len(line) for line in lines) < 2000
    assert all(json.loads(line)["body"] for line in lines)


@pytest.mark.slow
def test_a_runner_rendering_cpu_bombs_answers_sigterm(sqlite_db: Database, tmp_path: Path) -> None:
    due = utcnow() - timedelta(seconds=1)
    bulk_due_steps(sqlite_db, 4, "task", due, subject=NESTED_LOOPS, body="notes")
    runner = start_runner(sqlite_db.url, tmp_path, "busy")
    time.sleep(2.5)  # the runner is inside its first batch's renders
    sent = time.monotonic()
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 0
    assert time.monotonic() - sent < 8
    assert "Traceback" not in (tmp_path / "busy.log").read_text()
