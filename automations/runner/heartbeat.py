"""Runner heartbeats: each runner writes one row per tick, so the dashboard can
tell whether a runner is alive and when it last worked."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.domain.models import RunnerHeartbeat

ALIVE_MIN = timedelta(seconds=30)


def default_runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(
    session: Session,
    runner_id: str,
    now: datetime,
    *,
    started_at: datetime,
    steps_done: int = 0,
    error: str | None = None,
    stopped: bool = False,
) -> RunnerHeartbeat:
    """Record a tick of `runner_id`: add `steps_done` to its count, keep the last error."""
    row = session.get(RunnerHeartbeat, runner_id)
    if row is None:
        row = RunnerHeartbeat(
            runner_id=runner_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=started_at,
            last_tick_at=now,
            steps_done=0,
        )
        session.add(row)
    row.last_tick_at = now
    row.steps_done = (row.steps_done or 0) + steps_done
    row.stopped_at = now if stopped else None
    if error is not None:
        row.last_error = error[:2000]
        row.last_error_at = now
    return row


@dataclass(frozen=True)
class RunnerStatus:
    runner_id: str
    host: str
    pid: int
    started_at: datetime
    last_tick_at: datetime
    steps_done: int
    last_error: str | None
    last_error_at: datetime | None
    stopped_at: datetime | None
    alive: bool


def runner_statuses(session: Session, now: datetime, *, interval_seconds: float = 5.0) -> list[RunnerStatus]:
    """Every runner that has ticked, newest first; `alive` when it ticked within
    max(3 intervals, 30 s) and did not stop."""
    window = max(timedelta(seconds=3 * interval_seconds), ALIVE_MIN)
    rows = session.scalars(select(RunnerHeartbeat).order_by(RunnerHeartbeat.last_tick_at.desc()).limit(100)).all()
    return [
        RunnerStatus(
            runner_id=r.runner_id,
            host=r.host,
            pid=r.pid,
            started_at=r.started_at,
            last_tick_at=r.last_tick_at,
            steps_done=r.steps_done,
            last_error=r.last_error,
            last_error_at=r.last_error_at,
            stopped_at=r.stopped_at,
            alive=r.stopped_at is None and now - r.last_tick_at <= window,
        )
        for r in rows
    ]
