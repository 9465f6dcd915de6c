"""The runner's engine: each tick claims due steps in batches and executes them
over their channels (I/O-bound ones concurrently, on a thread pool) until nothing
is due; then the other per-tick jobs run.

Delivery is correct by construction (SPEC section 9):
- each step's result is recorded as soon as its delivery returns, in groups at
  most `RECORD_EVERY_S` old, never at the end of a batch: one slow message holds
  no other result hostage, and a killed runner leaves only its deliveries in
  flight and a fraction of a second of results unrecorded;
- while a runner works on claimed steps it renews their leases every third of
  the lease, so only a runner that stopped (killed, frozen, cut off) loses them;
- recording is retried on transient database errors with backoff, the results
  kept in hand, and a runner that cannot record claims nothing new meanwhile;
- on `stop()` (SIGTERM) unstarted deliveries are released at once for another
  runner, those in flight finish and are recorded.
A repeat delivery happens only when a runner dies between sending and recording,
and carries the same idempotency key.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import schedule
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)

from automations.channels import ChannelSet, build_channels, get_webhook_secret
from automations.channels.base import FAILED, SKIPPED, Channel, Delivery, Job, delivery_from_error
from automations.content.bounded import BoundedRenderer, Field
from automations.domain.config import Settings
from automations.domain.db import Database, is_transient
from automations.domain.timeutil import as_utc, utcnow
from automations.engagement.tokens import load_tracking_key
from automations.runner.claims import Claimed, claim_batch, release_claims, renew_claims
from automations.runner.heartbeat import beat, default_runner_id
from automations.runner.mailbox import MailboxPoller, MailboxUnavailable
from automations.runner.recording import BACKOFF_BASE, Recorded, Result, record_results
from automations.runner.rules import process_all_rules

log = logging.getLogger("automations.runner")

TickJob = Callable[[datetime | None], Any]  # None: take the clock
DEFAULT_LEASE_S = 30.0
HEARTBEAT_DURING_WORK_S = 10.0
POLL_S = 0.1  # how often a busy batch checks for a stop and for leases to renew
# Results wait at most this long to be recorded together: one transaction per
# finished delivery would cost a fast channel a third of its throughput.
RECORD_EVERY_S = 0.2
RECORD_RETRY_MAX_WAIT_S = 5.0


@dataclass
class TickSummary:
    """What one tick did."""

    executed: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    released: int = 0
    held: int = 0  # due steps moved instead of claimed (send window, quiet hours, frequency caps)

    def add(self, recorded: Recorded, results: Sequence[Result]) -> None:
        self.lost += len(recorded.lost)
        for r in results:
            if r.job.step_id in recorded.lost:
                continue
            outcome = recorded.final.get(r.job.step_id, "retry")
            self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
            self.executed += 1

    def merge(self, other: TickSummary) -> None:
        self.executed += other.executed
        self.lost += other.lost
        self.released += other.released
        self.held += other.held
        for key, count in other.by_outcome.items():
            self.by_outcome[key] = self.by_outcome.get(key, 0) + count


# Size budgets of what a step renders (characters); SPEC section 9.
FIELD_LIMITS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "email": (("subject", 998, "the subject"), ("body", 1_000_000, "the body")),
    "sms": (("body", 1600, "the text"),),
    "task": (("subject", 300, "the title"), ("body", 1_000_000, "the notes")),
    "webhook": (),
}
WEBHOOK_PAYLOAD_LIMIT = 256 * 1024  # bytes of JSON


def _precheck(job: Job) -> Delivery | None:
    """Opted-out contacts are skipped; a missing address fails the step."""
    if job.message_type == "email":
        if job.email_opt_out:
            return Delivery(SKIPPED, "contact opted out of email")
        if job.email_bouncing:
            return Delivery(SKIPPED, "email bounced")
        if not job.email:
            return Delivery(FAILED, "contact has no email address")
    elif job.message_type == "sms":
        if job.sms_opt_out:
            return Delivery(SKIPPED, "contact opted out of SMS")
        if not job.phone:
            return Delivery(FAILED, "contact has no phone number")
    elif job.message_type == "webhook":
        size = len(json.dumps(job.webhook_payload or {}, default=str).encode())
        if size > WEBHOOK_PAYLOAD_LIMIT:
            return Delivery(FAILED, f"the webhook payload is {size:,} bytes, more than {WEBHOOK_PAYLOAD_LIMIT:,}")
    elif job.message_type != "task":
        return Delivery(FAILED, f"unknown message type {job.message_type!r}")
    return None


def render_jobs(renderer: BoundedRenderer, jobs: Sequence[Job]) -> dict[int, Delivery]:
    """Render what each job's channel sends (an SMS has no subject, a webhook
    neither) under the size and time budgets; a job whose template exceeds one,
    or fails, gets a permanent failure with the reason."""
    items = []
    for job in jobs:
        fields = [
            Field(getattr(job, f"{name}_source"), limit, label) for name, limit, label in FIELD_LIMITS[job.message_type]
        ]
        extra = {"campaign": {"name": job.campaign_name}, "step": {"name": job.name}}
        items.append((fields, job.contact, extra))
    failures: dict[int, Delivery] = {}
    for job, rendered in zip(jobs, renderer.render_many(items), strict=True):
        if rendered.texts is None:
            reason = rendered.problem or "cannot render"
            if rendered.kind == "error" and rendered.exception:
                reason = f"cannot personalise the message: {rendered.exception}: {rendered.message}"
            failures[job.step_id] = Delivery(FAILED, reason)
            continue
        for (name, _, _), text in zip(FIELD_LIMITS[job.message_type], rendered.texts, strict=True):
            setattr(job, name, text)
    return failures


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
        # How long a claim outlives a runner that stopped renewing it; a live
        # runner renews every third of it, however slow its channels are.
        self.lease = timedelta(seconds=lease_seconds or DEFAULT_LEASE_S)
        self.backoff_base = backoff_base
        self.rng = rng or random.Random()
        self.clock = clock
        self.started_at = clock()
        self._stop = threading.Event()
        self._abort = threading.Event()  # stop retrying the database too (tests, a hard stop)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="channel")
        self._channels = channels
        self._renderer = BoundedRenderer()
        # SPEC section 10, applied at claim time (parsed once: they are checked every batch).
        self._caps = self.settings.caps
        self._quiet_hours = self.settings.quiet_hours
        # The jobs of every tick, in order. Other periodic work (follow-up rules)
        # is added here: each job gets the tick's time and is isolated from the others.
        self.tick_jobs: list[tuple[str, TickJob]] = [
            ("steps", self.execute_due_steps),
            (
                "rules",
                lambda now: process_all_rules(db, now=now or self.clock(), runner_id=self.runner_id, batch=batch_size),
            ),
        ]
        self.mailbox: MailboxPoller | None = None
        if self.settings.imap_host:  # SPEC section 11: replies, auto-replies and bounces
            self.mailbox = MailboxPoller(
                db, self.settings, runner_id=self.runner_id, lease=self.lease, should_stop=self._stop.is_set
            )
            self.tick_jobs.append(("mailbox", self.mailbox.poll_if_due))
        self._unreported = 0  # steps executed since the last heartbeat
        self._last_beat = time.monotonic()
        self._trouble: str | None = None  # why recording is stalled, for the heartbeat
        self._trouble_seen: str | None = None  # a stall that ended, for the next heartbeat

    # --- channels ----------------------------------------------------------

    @property
    def channels(self) -> ChannelSet:
        if self._channels is None:
            with self.db.session() as session:
                secret = get_webhook_secret(session, self.settings)
            self._channels = build_channels(self.settings, secret, tracking_key=lambda: load_tracking_key(self.db))
        return self._channels

    # --- one batch ------------------------------------------------------------

    def claim(self, now: datetime) -> list[Job]:
        return self.claim_batch(now).jobs

    def claim_batch(self, now: datetime) -> Claimed:
        with self.db.session() as session:
            return claim_batch(
                session,
                self.runner_id,
                now,
                limit=self.batch_size,
                lease=self.lease,
                max_attempts=self.settings.max_attempts,
                caps=self._caps,
                quiet_hours=self._quiet_hours,
            )

    def _start(self, jobs: Sequence[Job], done: Callable[[Result], None]) -> list[tuple[Job, Future[Result]]]:
        """Start delivering `jobs`; `done(result)` is called as each finishes (in
        a channel thread for I/O-bound channels). Returns the deliveries handed to
        the thread pool, which may still be cancelled before they start."""
        started = self.clock()
        by_type: dict[str, list[Job]] = {}
        ready = []
        for job in jobs:
            early = _precheck(job)
            if early is not None:
                done(Result(job, early, started, self.clock()))
            else:
                ready.append(job)
        failed = render_jobs(self._renderer, ready)
        for job in ready:
            if job.step_id in failed:
                done(Result(job, failed[job.step_id], started, self.clock()))
            else:
                by_type.setdefault(job.message_type, []).append(job)
        queued: list[tuple[Job, Future[Result]]] = []
        for message_type, group in by_type.items():
            channel = self.channels.for_type(message_type)
            if getattr(channel, "io_bound", False) and len(group) > 1 and self.concurrency > 1:
                # One job per task: a result is ready the moment its delivery
                # returns, and a job not yet started can be given back on stop.
                # Connection-oriented channels keep a pool of open connections.
                for job in group:
                    future = self._pool.submit(self._deliver, channel, job)
                    future.add_done_callback(_report_to(done))
                    queued.append((job, future))
            else:
                began = self.clock()
                try:
                    deliveries = channel.send_many(group)
                except Exception as exc:  # a channel bug fails only this attempt
                    deliveries = [delivery_from_error(exc) for _ in group]
                finished = self.clock()
                for job, delivery in zip(group, deliveries, strict=True):
                    done(Result(job, delivery, began, finished))
        return queued

    def _deliver(self, channel: Channel, job: Job) -> Result:
        began = self.clock()
        try:
            [delivery] = channel.send_many([job])
        except Exception as exc:  # never lose the job's result to a channel bug
            delivery = delivery_from_error(exc)
        return Result(job, delivery, began, self.clock())

    def execute(self, jobs: Sequence[Job]) -> list[Result]:
        """Run `jobs` over their channels and wait for every result (in job order)."""
        results: dict[int, Result] = {}
        lock = threading.Lock()

        def done(result: Result) -> None:
            with lock:
                results[result.job.step_id] = result

        for _, future in self._start(jobs, done):
            future.result()
        return [results[job.step_id] for job in jobs]

    def record(self, results: Sequence[Result], now: datetime | None) -> Recorded:
        """Record `results`, retrying transient database errors with backoff until
        the database answers (or `_abort`): a delivered result is never dropped
        while the runner lives. `now` None: the time of the attempt that succeeds."""
        if not results:
            return Recorded(final={}, retried={}, lost=[])
        began = time.monotonic()
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential(multiplier=0.05, max=RECORD_RETRY_MAX_WAIT_S) + wait_random(0, 0.1),
            stop=stop_when_event_set(self._abort),
            before_sleep=lambda state: self._stalled(state, len(results), began),
            reraise=True,
        )
        try:
            recorded = retrying(self._record_once, results, now)
        except Exception as exc:
            if is_transient(exc):
                raise
            # Not the database's mood but one result it refuses: record the others.
            log.exception("could not record %d result(s) together; recording them one by one", len(results))
            recorded = Recorded(final={}, retried={}, lost=[])
            for result in results:
                try:
                    one = retrying(self._record_once, [result], now)
                except Exception:
                    log.exception("step %d: result not recorded (its claim will expire)", result.job.step_id)
                    recorded.lost.append(result.job.step_id)
                    continue
                recorded.final.update(one.final)
                recorded.retried.update(one.retried)
                recorded.lost.extend(one.lost)
        if self._trouble is not None:
            waited = time.monotonic() - began
            log.warning("the database answers again: %d result(s) recorded after %.0fs", len(results), waited)
            # The next heartbeat says what happened, as the stalled one could not be written.
            self._trouble_seen = f"{self._trouble.split(';')[0]}, recorded after {waited:.0f}s"
            self._trouble = None
        return recorded

    def _record_once(self, results: Sequence[Result], now: datetime | None) -> Recorded:
        with self.db.session() as session:
            return record_results(
                session,
                results,
                now or self.clock(),
                runner_id=self.runner_id,
                max_attempts=self.settings.max_attempts,
                rng=self.rng,
                backoff_base=self.backoff_base,
                quiet_hours=self._quiet_hours,
            )

    def _stalled(self, state: RetryCallState, count: int, began: float) -> None:
        exc = state.outcome.exception() if state.outcome else None
        waited = time.monotonic() - began
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if exc else "unknown error"
        if waited >= self.lease.total_seconds() and self._trouble is None:
            self._trouble = f"cannot record results for {waited:.0f}s ({reason}); not claiming new work"
            log.error(
                "cannot record %d result(s) for %.0fs (%s): not claiming new work until the database answers; "
                "the results are kept",
                count,
                waited,
                reason,
            )
        else:
            log.warning("recording %d result(s) failed (%s); retrying", count, reason)

    def run_batch(self, now: datetime | None, summary: TickSummary) -> int:
        """Claim one batch and execute it, recording results as deliveries finish;
        returns how many due steps it took: claimed, or held back (moved to a
        later time), so that a batch of held steps does not end the tick while
        other steps are due behind them."""
        claimed = self.claim_batch(now or self.clock())
        summary.held += claimed.held
        jobs = claimed.jobs
        if not jobs:
            return claimed.held
        token = jobs[0].token
        finished: queue.SimpleQueue[Result] = queue.SimpleQueue()
        queued = self._start(jobs, finished.put)
        held = {job.step_id for job in jobs}  # claimed, not yet recorded or released
        outstanding = len(jobs)
        buffer: list[Result] = []
        oldest = 0.0  # when the first result in `buffer` arrived
        last_renewal = time.monotonic()
        renew_every = self.lease.total_seconds() / 3
        released = False
        while outstanding or buffer:
            if self._stop.is_set() and not released:
                released = True
                unstarted = [job for job, future in queued if future.cancel()]
                if unstarted:
                    outstanding -= len(unstarted)
                    summary.released += self._release(token, [job.step_id for job in unstarted])
                    held.difference_update(job.step_id for job in unstarted)
            if buffer and (
                not outstanding or len(buffer) >= self.batch_size or time.monotonic() - oldest >= RECORD_EVERY_S
            ):
                recorded = self.record(buffer, now)
                summary.add(recorded, buffer)
                self._unreported += sum(1 for r in buffer if r.job.step_id not in recorded.lost)
                self._log_results(buffer, recorded)
                held.difference_update(r.job.step_id for r in buffer)
                buffer = []
            if not outstanding:
                continue
            try:
                result = finished.get(timeout=POLL_S)
            except queue.Empty:
                pass
            else:
                if not buffer:
                    oldest = time.monotonic()
                buffer.append(result)
                outstanding -= 1
                while outstanding:
                    try:
                        buffer.append(finished.get_nowait())
                    except queue.Empty:
                        break
                    outstanding -= 1
            if held and time.monotonic() - last_renewal >= renew_every:
                last_renewal = time.monotonic()
                self._renew(token, sorted(held), now)
            if time.monotonic() - self._last_beat > HEARTBEAT_DURING_WORK_S:
                # Long deliveries keep the runner visibly alive on the dashboard.
                self._beat([], now)
        return len(jobs) + claimed.held

    def _renew(self, token: str, step_ids: list[int], now: datetime | None) -> None:
        try:
            with self.db.session() as session:
                kept = renew_claims(session, token, step_ids, (now or self.clock()) + self.lease)
        except Exception as exc:  # the next renewal or the recording retries
            log.warning("could not renew the leases of %d step(s): %s", len(step_ids), exc)
            return
        if kept < len(step_ids):
            log.warning("%d of %d claim(s) were taken over by another runner", len(step_ids) - kept, len(step_ids))

    def _release(self, token: str, step_ids: list[int]) -> int:
        try:
            with self.db.session() as session:
                count = release_claims(session, token, step_ids)
        except Exception as exc:  # their leases expire instead
            log.warning("could not give back %d unstarted step(s): %s", len(step_ids), exc)
            return 0
        log.info("stopping: gave back %d step(s) not yet started", count)
        return count

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
            if self.run_batch(now, summary) == 0:
                break
        return summary

    def tick(self, now: datetime | None = None) -> TickSummary:
        """One tick: every per-tick job, each failure logged and kept in the heartbeat."""
        began = time.perf_counter()
        fixed = as_utc(now) if now is not None else None
        summary = TickSummary()
        for name, job in self.tick_jobs:
            if self._stop.is_set() and summary.executed + summary.released:
                break  # stopping: the steps in hand were finished; the rest waits
            try:
                # Steps take the clock batch by batch when no time is fixed.
                when = fixed if fixed is not None or job == self.execute_due_steps else self.clock()
                outcome = job(when)
                if isinstance(outcome, TickSummary):
                    summary.merge(outcome)
            except MailboxUnavailable as exc:  # a clear reason, no traceback at every poll
                log.error("tick job %s failed: %s", name, exc)
                summary.errors.append(f"{name}: {exc}")
            except Exception as exc:  # one failing job must not stop the runner
                log.exception("tick job %s failed", name)
                summary.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        summary.seconds = time.perf_counter() - began
        self._beat(summary.errors, fixed)
        if summary.executed or summary.errors or summary.released or summary.held or log.isEnabledFor(logging.DEBUG):
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_outcome.items())) or "nothing due"
            log.info(
                "tick: %d step(s) in %.2fs (%s)%s%s%s%s",
                summary.executed,
                summary.seconds,
                outcomes,
                f"; {summary.held} step(s) held for their send window, quiet hours or a frequency cap"
                if summary.held
                else "",
                f"; {summary.lost} result(s) dropped, claim lost" if summary.lost else "",
                f"; {summary.released} step(s) given back unstarted" if summary.released else "",
                f"; errors: {'; '.join(summary.errors)}" if summary.errors else "",
            )
        return summary

    def _beat(self, errors: list[str], now: datetime | None, stopped: bool = False) -> None:
        """Write the heartbeat with the steps executed since the previous one."""
        if self._trouble:
            errors = [*errors, self._trouble]
        if self._trouble_seen:
            errors = [*errors, self._trouble_seen]
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
            self._trouble_seen = None
        except Exception:
            log.exception("could not record the heartbeat")

    def run(self, interval: float = 5.0) -> None:
        """Tick every `interval` seconds until `stop()` (SIGTERM/SIGINT)."""
        scheduler = schedule.Scheduler()
        scheduler.every(interval).seconds.do(self.tick)  # type: ignore[arg-type]  # floats work
        log.info(
            "runner %s started (interval %ss, batch %d, concurrency %d, lease %ss)",
            self.runner_id,
            interval,
            self.batch_size,
            self.concurrency,
            self.lease.total_seconds(),
        )
        self.tick()
        while not self._stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            self._stop.wait(min(max(idle if idle is not None else interval, 0.01), interval))
        self._beat([], None, stopped=True)
        log.info("runner %s stopped", self.runner_id)

    def stop(self) -> None:
        """Claim nothing more: unstarted deliveries are given back, those in flight
        finish and are recorded, then `run()` returns."""
        self._stop.set()

    def abort(self) -> None:
        """`stop()`, and give up retrying the database (results not yet recorded
        are left to their leases)."""
        self._stop.set()
        self._abort.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._renderer.close()
        if self._channels is not None:
            self._channels.close()


def _report_to(done: Callable[[Result], None]) -> Callable[[Future[Result]], None]:
    """A done-callback handing a finished delivery's result to `done` (a delivery
    cancelled before it started has none: the caller gave it back)."""

    def callback(future: Future[Result]) -> None:
        if not future.cancelled():
            done(future.result())

    return callback
