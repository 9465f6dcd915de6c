"""Real runner processes for the runner's tests: start them, wait on what they
do to the database, stop them, and count what a sink received."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from automations.domain.db import Database
from automations.domain.models import AutomationStep
from tests.channels.support import HttpSink

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="


def start_runner(
    url: str, tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`python runner.py --runner-id NAME ARGS` on `url`, logging to `tmp_path/NAME.log`."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTOMATIONS_")},
        "AUTOMATIONS_DATABASE_URL": url,
        "AUTOMATIONS_OUTBOX_DIR": str(tmp_path / "box"),
        "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE": "1",
        "AUTOMATIONS_WEBHOOK_SECRET": SECRET,
        "AUTOMATIONS_SMS_QUIET_HOURS": "off",  # the suite runs at any hour (see tests/conftest.py)
        **(env or {}),
    }
    log = (tmp_path / f"{name}.log").open("a")
    return subprocess.Popen(
        [sys.executable, "runner.py", "--runner-id", name, *args],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_all(processes: list[subprocess.Popen[str]]) -> list[int]:
    """SIGTERM each runner still running; their exit codes."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    return [p.wait(timeout=60) for p in processes]


def open_steps(db: Database) -> int:
    with db.read_session() as s:
        open_ = AutomationStep.status.in_(("pending", "running"))
        return s.scalar(select(func.count()).select_from(AutomationStep).where(open_)) or 0


def statuses(db: Database) -> dict[str, int]:
    with db.read_session() as s:
        return dict(s.execute(select(AutomationStep.status, func.count()).group_by(AutomationStep.status)).all())


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def webhook_ids(sink: HttpSink) -> collections.Counter[str]:
    with sink.lock:
        return collections.Counter(r.headers["webhook-id"] for r in sink.requests)


def step_keys(db: Database, message_type: str) -> set[str]:
    with db.read_session() as s:
        return set(s.scalars(select(AutomationStep.idempotency_key).where(AutomationStep.message_type == message_type)))
