"""Claim-time scheduling benchmark (SPEC section 10): what the send windows, SMS
quiet hours and frequency caps cost a runner's claim and tick, with 10,000 and
with --big pending future steps (and as many past deliveries counted by the
caps) in the database.

    python bench/bench_holds.py                     # SQLite, 10,000 vs 1,000,000
    python bench/bench_holds.py --big 200000
    python bench/bench_holds.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Every round adds --due-contacts contacts, each with three campaigns whose first
step (an email or an SMS) is due now and whose second is a day later: a third
of the campaigns have a send window open now, a third one closed now, a third
none; every contact already had two emails and an SMS today. The runner has
caps `email:3/day,sms:1/day,email:10/week` and quiet hours covering the current
hour, so a tick sends some steps and holds the others (moving the steps after
them). Printed: the median claim (one batch, holds included), the median tick
draining a round, the median empty tick, and the ratio of the big database to
the small one (the target is at most 1.2).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from automations.domain.config import Settings  # noqa: E402
from automations.domain.db import Database  # noqa: E402
from automations.domain.models import (  # noqa: E402
    AutomationCampaign,
    AutomationStep,
    Contact,
    ContactDelivery,
)
from automations.domain.schedule import DAY_NAMES  # noqa: E402
from automations.domain.timeutil import utcnow  # noqa: E402
from automations.runner.claims import Claimed  # noqa: E402
from automations.runner.engine import Runner  # noqa: E402
from bench.bench_runner import drop_schemas, fresh_database  # noqa: E402

CAPS = "email:3/day,sms:1/day,email:10/week"
ZONES = ("America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney", "UTC")
ALL_DAY = {"days": list(DAY_NAMES), "start": "00:00", "end": "23:59"}
CHUNK = 20_000


class TimedRunner(Runner):
    """A runner that keeps the time of each claim (holds included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims: list[float] = []

    def claim_batch(self, now: datetime) -> Claimed:
        began = time.perf_counter()
        claimed = super().claim_batch(now)
        self.claims.append(time.perf_counter() - began)
        return claimed


def contact_row(tag: str, i: int, zone: str, now: datetime) -> dict[str, Any]:
    return {
        "first_name": f"B{i}",
        "last_name": tag,
        "email": f"b{i}.{tag}@example.com",
        "phone": "+14155550100",
        "company": "",
        "timezone": zone,
        "custom_fields": {},
        "email_opt_out": False,
        "sms_opt_out": False,
        "created_at": now,
        "updated_at": now,
    }


def step_row(campaign_id: int, position: int, message_type: str, at: datetime, days: int = 0) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "position": position,
        "name": f"{message_type} {position}",
        "message_type": message_type,
        "delay_days": days,
        "delay_hours": 0,
        "subject": "Hello {{ contact.first_name }}",
        "body": "Hi {{ contact.first_name }}.",
        "webhook_url": None,
        "webhook_payload": None,
        "business_days": False,
        "send_at": None,
        "scheduled_at": at,
        "due_at": at,
        "status": "pending",
        "attempts": 0,
        "idempotency_key": uuid.uuid4().hex,
    }


def ids_of(session: Any, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    return list(session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True), rows))


def fill_future(db: Database, count: int, now: datetime, per_campaign: int = 20) -> None:
    """`count` pending steps weeks ahead, in campaigns with a weekday send window,
    and `count` past deliveries of their contacts over the last fortnight."""
    tag = uuid.uuid4().hex[:6]
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    for first in range(0, count, CHUNK):
        n = min(CHUNK, count - first) // per_campaign or 1
        with db.session() as s:
            contacts = ids_of(s, Contact, [contact_row(tag, first + i, ZONES[i % len(ZONES)], now) for i in range(n)])
            campaigns = ids_of(
                s,
                AutomationCampaign,
                [
                    {
                        "name": "Later",
                        "contact_id": c,
                        "status": "active",
                        "start_at": now,
                        "schedule": {"timezone": "contact", "send_window": window, "holidays": None},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for c in contacts
                ],
            )
            at = now + timedelta(days=30)
            s.execute(
                insert(AutomationStep),
                [
                    step_row(c, p, ("email", "sms", "task")[p % 3], at + timedelta(days=p), days=1)
                    for c in campaigns
                    for p in range(per_campaign)
                ],
            )
            s.execute(
                insert(ContactDelivery),
                [
                    {
                        "contact_id": contacts[k % len(contacts)],
                        "channel": ("email", "sms")[k % 2],
                        "sent_at": now - timedelta(minutes=k % (14 * 24 * 60)),
                        "step_id": None,
                    }
                    for k in range(n * per_campaign)
                ],
            )


def fill_due(db: Database, contacts: int, now: datetime) -> int:
    """A round of due steps (see the module docstring); returns how many are due."""
    tag = uuid.uuid4().hex[:6]
    tomorrow = DAY_NAMES[(now.weekday() + 1) % 7]
    schedules = [
        {"timezone": "contact", "send_window": ALL_DAY, "holidays": None},
        {"timezone": "UTC", "send_window": {"days": [tomorrow], "start": "09:00", "end": "17:00"}, "holidays": None},
        None,
    ]
    with db.session() as s:
        ids = ids_of(s, Contact, [contact_row(tag, i, ZONES[i % len(ZONES)], now) for i in range(contacts)])
        campaigns = ids_of(
            s,
            AutomationCampaign,
            [
                {
                    "name": f"Due {k}",
                    "contact_id": c,
                    "status": "active",
                    "start_at": now,
                    "schedule": schedules[k],
                    "created_at": now,
                    "updated_at": now,
                }
                for c in ids
                for k in range(3)
            ],
        )
        due = now - timedelta(seconds=1)
        s.execute(
            insert(AutomationStep),
            [
                row
                for k, c in enumerate(campaigns)
                for row in (
                    step_row(c, 0, "sms" if k % 4 == 3 else "email", due),
                    step_row(c, 1, "task", due + timedelta(days=1), days=1),
                )
            ],
        )
        s.execute(
            insert(ContactDelivery),
            [
                {"contact_id": c, "channel": channel, "sent_at": now - timedelta(minutes=m), "step_id": None}
                for c in ids
                for channel, m in (("email", 5), ("email", 10), ("sms", 15))
            ],
        )
    return len(campaigns)


def analyze(db: Database) -> None:
    with db.session() as s:
        s.execute(text("ANALYZE"))


def quiet_now(now: datetime) -> str:
    """Quiet hours around the current hour of every zone in ZONES would need one
    range per zone; one around UTC's hour holds the UTC contacts' SMS, the others
    go or are capped."""
    start = (now - timedelta(hours=1)).strftime("%H:00")
    end = (now + timedelta(hours=2)).strftime("%H:00")
    return f"{start}-{end}"


def measure(db: Database, folder: Path, args: argparse.Namespace) -> tuple[float, float, float, int, int]:
    now = utcnow()
    settings = Settings(
        _env_file=None, outbox_dir=folder / "outbox", frequency_cap=CAPS, sms_quiet_hours=quiet_now(now)
    )
    runner = TimedRunner(db, settings, batch_size=args.batch_size)
    ticks, claims = [], []
    executed = held = 0
    for _ in range(args.rounds):
        fill_due(db, args.due_contacts, utcnow())
        runner.claims = []
        began = time.perf_counter()
        summary = runner.tick()
        ticks.append(time.perf_counter() - began)
        claims += runner.claims[:-1] or runner.claims  # the last, empty claim ends the drain
        executed, held = executed + summary.executed, held + summary.held
    empties = []
    for _ in range(20):
        began = time.perf_counter()
        runner.tick()
        empties.append(time.perf_counter() - began)
    runner.close()
    return (
        statistics.median(claims),
        statistics.median(ticks),
        statistics.median(empties),
        executed // args.rounds,
        held // args.rounds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--due-contacts", type=int, default=200, help="contacts with due steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])
    print(
        f"schedule benchmark on {'PostgreSQL' if args.database_url else 'SQLite'}, caps {CAPS}, "
        f"{args.due_contacts * 3} due steps a round, batch {args.batch_size}",
        flush=True,
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            db = fresh_database(args.database_url, folder)
            fill_due(db, 20, utcnow())  # warm up: statement caches, planners
            TimedRunner(db, Settings(_env_file=None, outbox_dir=folder / "outbox", frequency_cap=CAPS)).tick()
            filled = 0
            for size in (10_000, args.big):
                began = time.perf_counter()
                fill_future(db, size - filled, utcnow())
                filled = size
                analyze(db)
                fill_seconds = time.perf_counter() - began
                results[size] = measure(db, folder, args)
                claim, tick, empty, executed, held = results[size]
                print(
                    f"{size:>9,} future steps and past deliveries (filled in {fill_seconds:.0f}s): "
                    f"claim {claim * 1000:6.1f} ms/batch, tick {tick * 1000:7.1f} ms "
                    f"({executed} sent, {held} held), empty tick {empty * 1000:5.2f} ms",
                    flush=True,
                )
            db.dispose()
        finally:
            drop_schemas(args.database_url)
    small, big = results[10_000], results[args.big]
    print(
        f"ratio {args.big:,} vs 10,000: claim x{big[0] / small[0]:.2f}, tick x{big[1] / small[1]:.2f}, "
        f"empty tick x{big[2] / small[2]:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
