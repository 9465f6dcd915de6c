"""Opens and clicks written in batches: the tracking endpoints answer from memory and
a background thread writes what they saw.

A hit is queued (`HitWriter.add`) and written with others in one transaction every
`interval` seconds (0.2 by default), or as soon as `batch_size` (500) are waiting:
the engagement events and contact events with one `insert_rows` each, and the
steps' first open and first click with one UPDATE per batch that only fills a
NULL, so the first hit wins even against another API process. A person's open
is an `email_opened` contact event only for the hit that set `opened_at` (the
UPDATE says which steps it changed); every person's click is a `link_clicked`
event. Machine hits (proxies, link scanners) are kept as engagement events only.

`close()` stops the thread and writes everything still queued: a clean stop loses
nothing. A crash (SIGKILL, power loss) loses what was queued and not yet
written: at most one interval of hits. If the database is unreachable, hits stay
queued and are tried again, up to `max_pending`. A full queue is first felt as
back-pressure (the endpoint waits for room, `api.tracking`); only a queue that
stays full (a long outage) drops the newest hits, counted in `dropped` and
logged, so that memory cannot run out.

`StepCache` keeps what a hit needs to know about a step (its campaign, contact,
sending time and links; none of these change once it is sent) in a small LRU,
so a hot link does not read the database each time.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, literal, select, update
from sqlalchemy.orm import Session

from automations.domain.db import Database, id_in, insert_rows, is_transient, table_of
from automations.domain.models import AutomationCampaign, AutomationStep, ContactEvent, EngagementEvent

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.2
BATCH_SIZE = 500
MAX_PENDING = 100_000
STEP_CACHE_SIZE = 4096

OPEN_KIND, CLICK_KIND = "open", "click"


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What a tracking hit needs to know about a sent step."""

    step_id: int
    campaign_id: int
    contact_id: int
    executed_at: datetime | None
    links: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One open or click, as the endpoint saw it."""

    kind: str  # open or click
    step_id: int
    occurred_at: datetime
    machine: bool = False
    user_agent: str | None = None
    ip: str | None = None
    link_index: int | None = None
    url: str | None = None


def load_step(session: Session, step_id: int) -> StepInfo | None:
    """The step's campaign, contact, sending time and links, or None when there is no such step."""
    row = session.execute(
        select(AutomationStep.executed_at, AutomationStep.result, AutomationCampaign.id, AutomationCampaign.contact_id)
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .where(AutomationStep.id == step_id)
    ).first()
    if row is None:
        return None
    executed_at, result, campaign_id, contact_id = row
    links = (result or {}).get("links") if isinstance(result, dict) else None
    return StepInfo(
        step_id=step_id,
        campaign_id=campaign_id,
        contact_id=contact_id,
        executed_at=executed_at,
        links=tuple(str(link) for link in links) if isinstance(links, list) else (),
    )


class StepCache:
    """A thread-safe LRU of `StepInfo` by step id. Only steps that exist are kept:
    a step deleted later is caught when its hits are written."""

    def __init__(self, db: Database, size: int = STEP_CACHE_SIZE) -> None:
        self.db = db
        self.size = size
        self._items: OrderedDict[int, StepInfo] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, step_id: int) -> StepInfo | None:
        """The step if it is in the cache (no database access: safe on the event loop)."""
        with self._lock:
            info = self._items.get(step_id)
            if info is not None:
                self._items.move_to_end(step_id)
            return info

    def load(self, step_id: int) -> StepInfo | None:
        """The step from the cache, else from the database (kept for next time)."""
        info = self.cached(step_id)
        if info is not None:
            return info
        with self.db.read_session() as session:
            info = load_step(session, step_id)
        if info is not None:
            with self._lock:
                self._items[step_id] = info
                self._items.move_to_end(step_id)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return info


class HitWriter:
    """The queue of hits and the thread that writes them (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = FLUSH_INTERVAL_S,
        batch_size: int = BATCH_SIZE,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.db = db
        self.interval = interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.dropped = 0
        self.written = 0
        self._pending: list[Hit] = []
        self._lock = threading.Lock()  # guards _pending
        self._flushing = threading.Lock()  # one flush at a time, so batches keep their order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tracking-hits", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write every hit still queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def add(self, hit: Hit) -> bool:
        """Queue `hit` (cheap: no database access, safe on the event loop). False, and
        nothing queued, when `max_pending` hits are already waiting."""
        with self._lock:
            if len(self._pending) >= self.max_pending:
                return False
            self._pending.append(hit)
            full = len(self._pending) >= self.batch_size
        if full:
            self._wake.set()
        return True

    def drop(self, hit: Hit) -> None:
        """Count `hit` as lost (the queue stayed full); logged for the first and every 1,000th."""
        with self._lock:
            self.dropped += 1
            dropped = self.dropped
        if dropped % 1000 == 1:
            log.warning("tracking hits queue full (%d waiting): %d hit(s) dropped so far", self.max_pending, dropped)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write every queued hit now, `batch_size` per transaction; the number written.
        A transient database error leaves the rest queued for the next try."""
        written = 0
        with self._flushing:
            while True:
                with self._lock:
                    batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
                if not batch:
                    return written
                try:
                    with self.db.session() as session:
                        write_hits(session, batch)
                except Exception as exc:
                    if not is_transient(exc):
                        log.exception("dropped %d tracking hits that could not be written", len(batch))
                        self.dropped += len(batch)
                        continue
                    log.warning("tracking hits not written yet (%s); trying again", exc)
                    with self._lock:
                        self._pending[:0] = batch
                        overflow = len(self._pending) - self.max_pending
                        if overflow > 0:
                            del self._pending[-overflow:]
                            self.dropped += overflow
                    if overflow > 0:
                        log.warning("tracking hits queue full: %d hit(s) dropped so far", self.dropped)
                    return written
                written += len(batch)
                self.written += len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the loop must go on; the next flush tries again
                log.exception("flushing tracking hits failed")
            if self._stop.is_set():
                return


def write_hits(session: Session, hits: Sequence[Hit]) -> None:
    """Write `hits` in the session's transaction: engagement events, the steps' first
    open and click, and the contact events the follow-up rules see."""
    step_ids = {hit.step_id for hit in hits}
    # Campaign and contact as they are now (the hits of a step deleted meanwhile are
    # dropped), and whether the first open and click are still to be set.
    owners: dict[int, tuple[int, int]] = {}
    unopened: set[int] = set()
    unclicked: set[int] = set()
    for step_id, campaign_id, contact_id, opened_at, clicked_at in session.execute(
        select(
            AutomationStep.id,
            AutomationCampaign.id,
            AutomationCampaign.contact_id,
            AutomationStep.opened_at,
            AutomationStep.clicked_at,
        )
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .where(id_in(session, AutomationStep.id, step_ids))
    ):
        owners[step_id] = (campaign_id, contact_id)
        if opened_at is None:
            unopened.add(step_id)
        if clicked_at is None:
            unclicked.add(step_id)
    hits = [hit for hit in hits if hit.step_id in owners]
    if not hits:
        return
    insert_rows(
        session,
        table_of(EngagementEvent),
        [
            {
                "kind": hit.kind,
                "step_id": hit.step_id,
                "campaign_id": owners[hit.step_id][0],
                "contact_id": owners[hit.step_id][1],
                "occurred_at": hit.occurred_at,
                "machine": hit.machine,
                "user_agent": hit.user_agent,
                "ip": hit.ip,
                "link_index": hit.link_index,
                "url": hit.url,
                "detail": None,
            }
            for hit in hits
        ],
    )
    first_open: dict[int, datetime] = {}
    first_click: dict[int, datetime] = {}
    for hit in hits:
        # Only steps read as unset: a hot link does not rebuild the UPDATE each batch.
        if hit.kind == OPEN_KIND and not hit.machine and hit.step_id in unopened:
            first_open.setdefault(hit.step_id, hit.occurred_at)
        elif hit.kind == CLICK_KIND and not hit.machine and hit.step_id in unclicked:
            first_click.setdefault(hit.step_id, hit.occurred_at)
    opened = _fill_first(session, AutomationStep.opened_at, first_open)
    _fill_first(session, AutomationStep.clicked_at, first_click)

    events: list[dict[str, Any]] = []
    for step_id in opened:
        campaign_id, contact_id = owners[step_id]
        events.append(
            _contact_event(
                contact_id, "email_opened", {"campaign_id": campaign_id, "step_id": step_id}, first_open[step_id]
            )
        )
    for hit in hits:
        if hit.kind == CLICK_KIND and not hit.machine:
            campaign_id, contact_id = owners[hit.step_id]
            payload = {"campaign_id": campaign_id, "step_id": hit.step_id, "url": hit.url}
            events.append(_contact_event(contact_id, "link_clicked", payload, hit.occurred_at))
    insert_rows(session, table_of(ContactEvent), events)


def _fill_first(session: Session, column: Any, times: dict[int, datetime]) -> list[int]:
    """Set `column` to each step's time where it is NULL, in one statement; the steps it set."""
    if not times:
        return []
    steps = table_of(AutomationStep)
    statement = (
        update(steps)
        .where(id_in(session, steps.c.id, list(times)), steps.c[column.key].is_(None))
        .values({column.key: case({k: literal(v, column.type) for k, v in times.items()}, value=steps.c.id)})
        .returning(steps.c.id)
    )
    return list(session.scalars(statement))


def _contact_event(contact_id: int, kind: str, payload: dict[str, Any], when: datetime) -> dict[str, Any]:
    return {"contact_id": contact_id, "kind": kind, "name": None, "payload": payload, "occurred_at": when}


__all__ = ["BATCH_SIZE", "FLUSH_INTERVAL_S", "Hit", "HitWriter", "StepCache", "StepInfo", "load_step", "write_hits"]
