"""Follow-up rules benchmark: how fast the runner turns contact events into rule
actions, and what an idle rules pass costs on a large, already-processed history.

    python bench/bench_rules.py                       # SQLite, 5,000 contacts
    python bench/bench_rules.py --contacts 20000
    python bench/bench_rules.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Prints:
  events/s       evaluating the contacts' events (contact_created + tag_added +
                 an inbound event each) against 4 rules and applying the results
                 (a follow-up per contact, a campaign per contact, skipped
                 re-enrolments), batch 500
  idle pass      one `process_rules` call when nothing is new (every tick pays it),
                 with the whole history and the overdue rule in place
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from automations.domain import migrate  # noqa: E402
from automations.domain.config import Settings  # noqa: E402
from automations.domain.db import Database  # noqa: E402
from automations.domain.models import (  # noqa: E402
    AutomationTemplate,
    Contact,
    ContactTag,
    RuleExecution,
)
from automations.domain.timeutil import utcnow  # noqa: E402
from automations.runner.rules import process_rules  # noqa: E402
from automations.services import rules  # noqa: E402
from automations.services.events import record_event  # noqa: E402
from automations.services.seed import seed_system_templates  # noqa: E402


def _database(url: str | None) -> tuple[Database, str | None]:
    if url is None:
        path = Path(tempfile.mkdtemp()) / "rules-bench.db"
        db = Database(f"sqlite:///{path}", settings=Settings(_env_file=None))
        migrate.upgrade(db)
        return db, None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    admin.dispose()
    sep = "&" if "?" in url else "?"
    db = Database(f"{url}{sep}options=-csearch_path%3D{schema}", settings=Settings(_env_file=None))
    migrate.upgrade(db)
    return db, schema


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    db, schema = _database(args.database_url)
    now = utcnow()
    try:
        with db.session() as s:
            seed_system_templates(s)
            onboarding = s.scalar(
                sa.select(AutomationTemplate.id).where(AutomationTemplate.name == "Customer Onboarding")
            )
            base = {"action": "create_followup", "action_config": {"title": "Call {{ contact.first_name }}"}}
            rules.create_rule(s, {**base, "name": "Welcome", "trigger": "contact_created"}, now=now - timedelta(days=1))
            rules.create_rule(
                s,
                {
                    "name": "Trial",
                    "trigger": "tag_added",
                    "trigger_config": {"tag": "trial"},
                    "action": "start_campaign",
                    "action_config": {"template_id": onboarding},
                },
                now=now - timedelta(days=1),
            )
            rules.create_rule(
                s,
                {
                    **base,
                    "name": "Replied",
                    "trigger": "inbound_event",
                    "trigger_config": {"event": "replied"},
                    "conditions": [{"kind": "tag", "tag": "vip"}],
                },
                now=now - timedelta(days=1),
            )
            rules.create_rule(
                s,
                {**base, "name": "Overdue", "trigger": "followup_overdue", "trigger_config": {"days_overdue": 3}},
                now=now - timedelta(days=1),
            )
        # Contacts and their events written directly in bulk (the services add them one by one).
        t0 = time.perf_counter()
        with db.session() as s:
            for n in range(args.contacts):
                contact = Contact(
                    first_name=f"P{n}",
                    last_name="Bench",
                    email=f"p{n}@example.com",
                    tag_rows=[ContactTag(tag="trial")] + ([ContactTag(tag="vip")] if n % 2 else []),
                    created_at=now,
                    updated_at=now,
                )
                s.add(contact)
                if n % 1000 == 999:
                    s.flush()
            s.flush()
            ids = list(s.scalars(sa.select(Contact.id)))
            for cid in ids:
                record_event(s, contact_id=cid, kind="contact_created", now=now)
                record_event(s, contact_id=cid, kind="tag_added", payload={"tag": "trial"}, now=now)
                record_event(s, contact_id=cid, kind="inbound_event", name="replied", payload={}, now=now)
        print(f"setup: {args.contacts} contacts, {3 * len(ids)} events in {time.perf_counter() - t0:.1f}s")

        t0 = time.perf_counter()
        handled = 0
        while True:
            step = process_rules(db, now=now, runner_id="bench", batch=500)
            if step == 0:
                break
            handled += step
        took = time.perf_counter() - t0
        with db.read_session() as s:
            by_status = dict(
                s.execute(sa.select(RuleExecution.status, sa.func.count()).group_by(RuleExecution.status)).all()
            )
        print(
            f"events/s: {3 * len(ids) / took:,.0f} ({3 * len(ids)} events, {handled} items, {took:.1f}s; "
            f"executions {by_status})"
        )

        timings = []
        for _ in range(5):
            t0 = time.perf_counter()
            process_rules(db, now=now + timedelta(minutes=1), runner_id="bench", batch=500)
            timings.append(time.perf_counter() - t0)
        print(
            f"idle pass: {min(timings) * 1000:.1f} ms (best of 5; nothing new, "
            f"{len(ids)} pending follow-ups, overdue rule active)"
        )
    finally:
        db.dispose()
        if schema and args.database_url:
            admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
