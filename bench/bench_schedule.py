"""Planning benchmark: bulk-starting a template for many contacts with and without
a send window and a holiday calendar (target: at most 1.5× the time without).

    python bench/bench_schedule.py                    # SQLite, 10,000 contacts
    python bench/bench_schedule.py --contacts 2000
    python bench/bench_schedule.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Contacts are spread over ten time zones (half-hour offsets and both hemispheres),
so the planner works in every contact's own clock. Each variant runs `--rounds`
times, alternating, on the same database; the best round of each is compared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from automations.domain.db import insert_rows, table_of  # noqa: E402
from automations.domain.models import AutomationTemplate, Contact  # noqa: E402
from automations.domain.timeutil import UTC  # noqa: E402
from automations.services.campaigns import start_campaigns_for_contacts  # noqa: E402
from automations.services.seed import seed_system_templates  # noqa: E402
from automations.services.templates import create_template  # noqa: E402
from bench.bench_runner import drop_schemas, fresh_database  # noqa: E402

ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Pacific/Auckland",
    "Asia/Kathmandu",
]
OFFICE_HOURS = {
    "timezone": "contact",
    "send_window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"},
    "holidays": "US",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = fresh_database(args.database_url, Path(folder))
        try:
            run(db, args)
        finally:
            db.dispose()
            drop_schemas(args.database_url)


def run(db: object, args: argparse.Namespace) -> None:
    now = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)  # a Friday evening, the day after Thanksgiving
    with db.session() as session:  # type: ignore[attr-defined]
        seed_system_templates(session)
        nurture = session.scalar(select(AutomationTemplate).where(AutomationTemplate.name == "Lead Nurture (7-day)"))
        assert nurture is not None
        steps = [
            {
                "name": s.name,
                "message_type": s.message_type,
                "delay_days": s.delay_days,
                "delay_hours": s.delay_hours,
                "subject": s.subject,
                "body": s.body,
            }
            for s in nurture.steps
        ]
        plain = create_template(session, {"name": "Plain", "steps": steps}).id
        windowed = create_template(session, {"name": "Office hours", "steps": steps, "schedule": OFFICE_HOURS}).id
        insert_rows(
            session,
            table_of(Contact),
            [
                {
                    "first_name": f"Contact {n}",
                    "last_name": "",
                    "company": "",
                    "email": f"c{n}@example.com",
                    "timezone": ZONES[n % len(ZONES)],
                    "custom_fields": {},
                    "email_opt_out": False,
                    "sms_opt_out": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(args.contacts)
            ],
        )
        ids = list(session.scalars(select(Contact.id).order_by(Contact.id)))
    print(f"bulk start of a {len(steps)}-step template for {len(ids):,} contacts ({db.engine.dialect.name})")  # type: ignore[attr-defined]
    best: dict[str, float] = {}
    for round_no in range(args.rounds):
        for label, template_id in (("without a window", plain), ("window + US holidays", windowed)):
            started = time.perf_counter()
            with db.session() as session:  # type: ignore[attr-defined]
                start_campaigns_for_contacts(
                    session, ids, template_id=template_id, name=label, now=now + timedelta(minutes=round_no)
                )
            seconds = time.perf_counter() - started
            best[label] = min(best.get(label, seconds), seconds)
            print(f"  round {round_no + 1}  {label:22} {seconds:6.2f} s", flush=True)
    base, timed = best["without a window"], best["window + US holidays"]
    print(
        f"best: without {base:.2f} s, with window + holidays {timed:.2f} s: ratio {timed / base:.2f}× (target ≤ 1.5×)"
    )


if __name__ == "__main__":
    main()
