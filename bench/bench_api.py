"""How long the REST API takes to answer on a big database (in process, no network).

    python -m automations demo --contacts 100000     # about 1,000,000 steps
    python bench/bench_api.py [--database-url URL] [--repeat 5]

Prints the median of `--repeat` requests for each call (after one warm-up request).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from automations.api import create_app  # noqa: E402
from automations.domain.config import Settings  # noqa: E402
from automations.domain.db import Database  # noqa: E402
from automations.domain.models import AutomationCampaign, AutomationStep  # noqa: E402
from automations.domain.timeutil import utcnow  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("AUTOMATIONS_DATABASE_URL", "sqlite:///data/automations.db")
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(_env_file=None, api_token="bench", database_url=args.database_url)
    db = Database(args.database_url, settings=settings)
    with db.read_session() as session:
        steps = session.scalar(select(func.count()).select_from(AutomationStep)) or 0
        campaign_id, contact_id = session.execute(
            select(AutomationCampaign.id, AutomationCampaign.contact_id)
            .order_by(AutomationCampaign.id)
            .offset(1000)
            .limit(1)
        ).one()
    # The demo data is spread around its creation time: query the weeks and month of today.
    today = utcnow().date()
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    client = TestClient(create_app(db, settings), headers={"Authorization": "Bearer bench"})
    calls = [
        ("campaigns, first page", "/api/automation/campaigns/?limit=50"),
        ("campaigns, page 1000", "/api/automation/campaigns/?limit=50&offset=50000"),
        ("campaigns, status=paused", "/api/automation/campaigns/?status=paused&limit=50"),
        ("campaigns of one contact", f"/api/automation/campaigns/?contact_id={contact_id}"),
        ("one campaign with steps", f"/api/automation/campaigns/{campaign_id}/"),
        ("contacts, first page", "/api/contacts/?limit=50"),
        ("contacts, search", "/api/contacts/?search=smith&limit=50"),
        ("templates", "/api/automation/templates/"),
        ("calendar, this week, 500", f"/api/automation/calendar/?start={week}&end={week + timedelta(days=7)}"),
        ("calendar, this month, 500", f"/api/automation/calendar/?start={month}&end={next_month}"),
        ("stats", "/api/automation/stats/"),
    ]
    print(f"{steps:,} steps in {db.engine.dialect.name}; median of {args.repeat} requests")
    for name, path in calls:
        client.get(path)
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - began)
            if response.status_code != 200:
                print(f"{name}: HTTP {response.status_code} {response.text[:200]}")
                return 1
        total = response.json().get("total") if isinstance(response.json(), dict) else None
        print(
            f"  {name:28s} {statistics.median(times) * 1000:8.1f} ms"
            + (f"   (total {total:,})" if isinstance(total, int) else "")
        )
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
