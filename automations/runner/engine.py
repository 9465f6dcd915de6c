"""The runner's engine: each tick claims due steps in batches, executes them over
their channels (I/O-bound ones concurrently, on a thread pool) and records the
results, until nothing is due; then the other per-tick jobs run.

Delivery is at least once: a result is recorded after the channel answered, so
a repeat happens only when a runner dies between the two; the repeat carries the
same idempotency key.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import schedule

from automations.channels import ChannelSet, build_channels, get_webhook_secret
from automations.channels.base import FAILED, SKIPPED, Delivery, Job
from automations.content import templating
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.timeutil import as_utc, utcnow
from automations.runner.claims import claim_due_steps
from automations.runner.heartbeat import beat, default_runner_id
from automations.runner.recording import BACKOFF_BASE, Recorded, Result, record_results
from automations.runner.rules import process_all_rules

log = logging.getLogger("automations.runner")

TickJob = Callable[[datetime | None], Any]  # None: take the clock
HEARTBEAT_DURING_DRAIN_S = 10.0


@dataclass
class TickSummary:
    """What one tick did."""

    executed: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, recorded: Recorded, results: Sequence[Result]) -> None:
        self.lost += len(recorded.lost)
        for r in results:
            if r.job.step_id in recorded.lost:
                continue
            outcome = recorded.final.get(r.job.step_id, "retry")
            self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
            self.executed += 1


def _render(source: str, job: Job) -> str:
    """`templating.render` for a job whose contact context is already built."""
    return templating.render_for_context(source, job.contact, campaign_name=job.campaign_name, step_name=job.name)


def _precheck(job: Job) -> Delivery | None:
    """Opted-out contacts are skipped; a missing address fails the step."""
    if job.message_type == "email":
        if job.email_opt_out:
            return Delivery(SKIPPED, "contact opted out of email")
        if not job.email:
            return Delivery(FAILED, "contact has no email address")
    elif job.message_type == "sms":
        if job.sms_opt_out:
            return Delivery(SKIPPED, "contact opted out of SMS")
        if not job.phone:
            return Delivery(FAILED, "contact has no phone number")
    elif job.message_type not in ("task", "webhook"):
        return Delivery(FAILED, f"unknown message type {job.message_type!r}")
    try:
        # Only what the channel sends: SMS has no subject, a webhook neither.
        if job.message_type in ("email", "task"):
            job.subject = _render(job.subject_source, job)
        if job.message_type != "webhook":
            job.body = _render(job.body_source, job)
    except Exception as exc:  # a template that cannot render fails only its step
        return Delivery(FAILED, f"cannot personalise the message: {type(exc).__name__}: {exc}")
    return None


class Runner:
    """Executes due steps. `tick()` runs every job in `tick_jobs` once (executing
    due steps first); `run()` ticks every `interval` seconds until `stop()`."""

    def __init__(
        self,
        db: Database,
        settings: Settings | None = None,
        *,
        runner_id: str | None = None,
        batch_size: int = 200,
        concurrency: int = 16,
        lease_seconds: float | None = None,
        backoff_base: timedelta = BACKOFF_BASE,
        rng: random.Random | None = None,
        channels: ChannelSet | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.db = db
        self.settings = settings or db.settings
        self.runner_id = runner_id or default_runner_id()
        self.batch_size = max(1, batch_size)
        self.concurrency = max(1, concurrency)
        # Long enough for a whole batch of timeouts, so a slow batch keeps its claim.
        self.lease = timedelta(
            seconds=lease_seconds
            or max(300.0, 2 * self.settings.webhook_timeout * math.ceil(self.batch_size / self.concurrency))
        )
        self.backoff_base = backoff_base
        self.rng = rng or random.Random()
        self.clock = clock
        self.started_at = clock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="channel")
        self._channels = channels
        # The jobs of every tick, in order. Other periodic work (follow-up rules)
        # is added here: each job gets the tick's time and is isolated from the others.
        self.tick_jobs: list[tuple[str, TickJob]] = [
            ("steps", self.execute_due_steps),
            (
                "rules",
                lambda now: process_all_rules(db, now=now or self.clock(), runner_id=self.runner_id, batch=batch_size),
            ),
        ]
        self._unreported = 0  # steps executed since the last heartbeat
        self._last_beat = time.monotonic()

    # --- channels ----------------------------------------------------------

    @property
    def channels(self) -> ChannelSet:
        if self._channels is None:
            with self.db.session() as session:
                secret = get_webhook_secret(session, self.settings)
            self._channels = build_channels(self.settings, secret)
        return self._channels

    # --- one batch ------------------------------------------------------------

    def claim(self, now: datetime) -> list[Job]:
        with self.db.session() as session:
            return claim_due_steps(
                session,
                self.runner_id,
                now,
                limit=self.batch_size,
                lease=self.lease,
                max_attempts=self.settings.max_attempts,
            )

    def execute(self, jobs: Sequence[Job]) -> list[Result]:
        """Run `jobs` over their channels; I/O-bound channels run on the thread pool."""
        started = self.clock()
        results: dict[int, Result] = {}
        by_type: dict[str, list[Job]] = {}
        for job in jobs:
            early = _precheck(job)
            if early is not None:
                results[job.step_id] = Result(job, early, started, self.clock())
            else:
                by_type.setdefault(job.message_type, []).append(job)
        pending: list[tuple[list[Job], Future[list[Delivery]]]] = []
        for message_type, group in by_type.items():
            channel = self.channels.for_type(message_type)
            if getattr(channel, "io_bound", False) and len(group) > 1 and self.concurrency > 1:
                for chunk in _chunks(group, channel, self.concurrency):
                    pending.append((chunk, self._pool.submit(channel.send_many, chunk)))
            else:
                for job, delivery in zip(group, channel.send_many(group), strict=False):
                    results[job.step_id] = Result(job, delivery, started, self.clock())
        for chunk, future in pending:
            deliveries = future.result()
            finished = self.clock()
            for job, delivery in zip(chunk, deliveries, strict=False):
                results[job.step_id] = Result(job, delivery, started, finished)
        return [results[job.step_id] for job in jobs]

    def record(self, results: Sequence[Result], now: datetime) -> Recorded:
        with self.db.session() as session:
            return record_results(
                session,
                results,
                now,
                runner_id=self.runner_id,
                max_attempts=self.settings.max_attempts,
                rng=self.rng,
                backoff_base=self.backoff_base,
            )

    def run_batch(self, now: datetime | None, summary: TickSummary) -> int:
        """Claim, execute and record one batch; returns how many steps were claimed."""
        jobs = self.claim(now or self.clock())
        if not jobs:
            return 0
        results = self.execute(jobs)
        recorded = self.record(results, now or self.clock())
        summary.add(recorded, results)
        self._log_results(results, recorded)
        return len(jobs)

    def _log_results(self, results: Sequence[Result], recorded: Recorded) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        for r in results:
            job = r.job
            if job.step_id in recorded.lost:
                status = "not recorded (claim lost)"
            elif job.step_id in recorded.retried:
                status = f"retry at {recorded.retried[job.step_id]:%Y-%m-%d %H:%M:%S}"
            else:
                status = recorded.final.get(job.step_id, "?")
            log.info(
                "step %d (%s, campaign %d, attempt %d): %s - %s",
                job.step_id,
                job.message_type,
                job.campaign_id,
                job.attempt_no,
                status,
                r.delivery.detail,
            )

    # --- ticks ---------------------------------------------------------------

    def execute_due_steps(self, now: datetime | None = None) -> TickSummary:
        """Execute batches until nothing is due (or a stop is requested).

        With `now` given (tests, `--once` at a fixed time) every batch uses it;
        otherwise each batch takes the current time, so lag is measured truly."""
        summary = TickSummary()
        while not self._stop.is_set():
            before = summary.executed
            claimed = self.run_batch(now, summary)
            self._unreported += summary.executed - before
            if claimed == 0:
                break
            if time.monotonic() - self._last_beat > HEARTBEAT_DURING_DRAIN_S:
                # A long drain keeps the runner visibly alive on the dashboard.
                self._beat([], now)
        return summary

    def tick(self, now: datetime | None = None) -> TickSummary:
        """One tick: every per-tick job, each failure logged and kept in the heartbeat."""
        began = time.perf_counter()
        fixed = as_utc(now) if now is not None else None
        summary = TickSummary()
        for name, job in self.tick_jobs:
            try:
                # Steps take the clock batch by batch when no time is fixed.
                when = fixed if fixed is not None or job == self.execute_due_steps else self.clock()
                outcome = job(when)
                if isinstance(outcome, TickSummary):
                    summary.executed += outcome.executed
                    summary.lost += outcome.lost
                    for key, count in outcome.by_outcome.items():
                        summary.by_outcome[key] = summary.by_outcome.get(key, 0) + count
            except Exception as exc:  # one failing job must not stop the runner
                log.exception("tick job %s failed", name)
                summary.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        summary.seconds = time.perf_counter() - began
        self._beat(summary.errors, fixed)
        if summary.executed or summary.errors or log.isEnabledFor(logging.DEBUG):
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_outcome.items())) or "nothing due"
            log.info(
                "tick: %d step(s) in %.2fs (%s)%s%s",
                summary.executed,
                summary.seconds,
                outcomes,
                f"; {summary.lost} result(s) dropped, claim lost" if summary.lost else "",
                f"; errors: {'; '.join(summary.errors)}" if summary.errors else "",
            )
        return summary

    def _beat(self, errors: list[str], now: datetime | None, stopped: bool = False) -> None:
        """Write the heartbeat with the steps executed since the previous one."""
        try:
            with self.db.session() as session:
                beat(
                    session,
                    self.runner_id,
                    now or self.clock(),
                    started_at=self.started_at,
                    steps_done=self._unreported,
                    error="; ".join(errors) if errors else None,
                    stopped=stopped,
                )
            self._unreported = 0
            self._last_beat = time.monotonic()
        except Exception:
            log.exception("could not record the heartbeat")

    def run(self, interval: float = 5.0) -> None:
        """Tick every `interval` seconds until `stop()` (SIGTERM/SIGINT)."""
        scheduler = schedule.Scheduler()
        scheduler.every(interval).seconds.do(self.tick)  # type: ignore[arg-type]  # floats work
        log.info(
            "runner %s started (interval %ss, batch %d, concurrency %d)",
            self.runner_id,
            interval,
            self.batch_size,
            self.concurrency,
        )
        self.tick()
        while not self._stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            self._stop.wait(min(max(idle if idle is not None else interval, 0.01), interval))
        self._beat([], None, stopped=True)
        log.info("runner %s stopped", self.runner_id)

    def stop(self) -> None:
        """Stop after the batch in hand (its results are recorded first)."""
        self._stop.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._channels is not None:
            self._channels.close()


def _chunks(group: list[Job], channel: Any, parts: int) -> list[list[Job]]:
    """Connection-oriented channels (SMTP) get one contiguous chunk per thread, so
    each thread reuses one connection; request-oriented ones get one job each."""
    if getattr(channel, "per_connection", False):
        size = math.ceil(len(group) / parts)
        return [group[i : i + size] for i in range(0, len(group), size)]
    return [[job] for job in group]
