"""CSV exports: columns as documented, round trip through pandas, formula
neutralisation, the CLI writing the download's bytes, and streaming memory."""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import insert

from automations.cli import main as cli
from automations.domain.errors import ValidationError
from automations.domain.models import AutomationCampaign, AutomationStep, Contact
from automations.reports.exports import (
    COLUMNS,
    EXPORT_KINDS,
    ExportFilter,
    cell,
    csv_bytes,
    export_file_name,
)
from tests.reports.calendar_data import T0, build_known

REPO = Path(__file__).resolve().parents[2]
D = timedelta(days=1)


def frame(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8")


def test_every_kind_has_its_documented_columns_and_rows(db):
    build_known(db)
    expected_rows = {"contacts": 2, "campaigns": 3, "steps": 9, "calendar": 9, "follow-ups": 3}
    with db.read_session() as s:
        for kind in EXPORT_KINDS:
            data = csv_bytes(s, kind, now=T0)
            table = frame(data)
            assert tuple(table.columns) == COLUMNS[kind], kind
            if kind in expected_rows:
                assert len(table) == expected_rows[kind], kind
            data.decode("utf-8")


def test_values_round_trip_with_iso_times_and_progress(db):
    built = build_known(db)
    with db.read_session() as s:
        steps = frame(csv_bytes(s, "steps"))
        campaigns = frame(csv_bytes(s, "campaigns"))
        contacts = frame(csv_bytes(s, "contacts"))
        calendar = frame(csv_bytes(s, "calendar", ExportFilter(start=T0, end=T0 + 2 * D), tz=ZoneInfo("Europe/Paris")))
        followups = frame(csv_bytes(s, "follow-ups", ExportFilter(status="pending")))
    a2 = steps.set_index("name").loc["A2"]
    assert a2["status"] == "failed" and a2["attempts"] == "5" and a2["last_error"] == "HTTP 400"
    assert a2["scheduled_at"] == "2026-03-03T09:00:00+00:00"
    assert a2["executed_at"] == "2026-03-03T09:03:00+00:00"
    assert a2["contact_name"] == "Ann Lee" and a2["campaign_id"] == str(built.campaign_ids[0])
    assert pd.Timestamp(a2["executed_at"]).tzinfo is not None
    alpha = campaigns.set_index("name").loc["Alpha"]
    assert (alpha["steps_total"], alpha["steps_finished"], alpha["progress_percent"]) == ("4", "3", "75.0")
    assert alpha["template_name"] == "Welcome" and alpha["completed_at"] == ""
    ann = contacts.set_index("email").loc["ann@example.com"]
    assert ann["tags"] == "vip" and ann["email_opt_out"] == "false" and ann["custom_fields"] == "{}"
    assert list(calendar["title"]) == ["B1", "A1", "B2", "A2"]
    assert calendar["start_local"][0] == "2026-03-02T10:00:20+01:00"
    assert list(followups["title"]) == ["Call Ann", "'+Check in"]


def test_filters_select_rows(db):
    built = build_known(db)
    with db.read_session() as s:

        def rows(kind, **kw):
            return frame(csv_bytes(s, kind, ExportFilter(**kw)))

        assert list(rows("steps", status="sent")["name"]) == ["A1", "B1", "C3"]
        assert set(rows("steps", message_type="sms", template_id=built.template_id)["name"]) == {"A2"}
        assert list(rows("campaigns", status="canceled")["name"]) == ["Gamma"]
        assert list(rows("campaigns", message_type="webhook")["name"]) == ["Beta", "Gamma"]
        assert len(rows("steps", contact_id=built.contact_ids[1])) == 2
        stats = rows("stats", template_id=built.template_id)
        figures = {(r.section, r.key): r.value for r in stats.itertuples()}
        assert figures[("steps_by_status", "sent")] == "2"
        with pytest.raises(ValidationError):
            csv_bytes(s, "everything")
        with pytest.raises(ValidationError):
            csv_bytes(s, "steps", ExportFilter(start=T0, end=T0))


def test_formula_cells_are_neutralised(db):
    build_known(db)
    for text in ("=1+1", "+31 20", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert cell(text) == "'" + text
    assert cell("plain = text") == "plain = text" and cell(-5) == "-5" and cell(None) == ""
    with db.read_session() as s:
        contacts = frame(csv_bytes(s, "contacts")).set_index("last_name")
    bob = contacts.loc["Stone"]
    assert bob["first_name"] == "'=Bob" and bob["company"] == "'@Evil"
    assert contacts.loc["Lee"]["phone"] == "'+14155550101"


def run_cli(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automations", "--database-url", url, "export", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_cli_writes_the_same_bytes_as_the_download(db, tmp_path, monkeypatch, capsys):
    build_known(db)
    monkeypatch.setenv("AUTOMATIONS_TIMEZONE", "Europe/Paris")
    from automations.domain.config import get_settings

    get_settings.cache_clear()
    paris = ZoneInfo("Europe/Paris")
    cases = [
        ("steps", [], ExportFilter()),
        ("contacts", [], ExportFilter()),
        ("campaigns", ["--status", "active"], ExportFilter(status="active")),
        ("follow-ups", [], ExportFilter()),
        (
            "calendar",
            ["--start", "2026-03-02", "--end", "2026-03-04"],
            ExportFilter(
                start=T0.replace(hour=0) - timedelta(hours=1), end=T0.replace(day=4, hour=0) - timedelta(hours=1)
            ),
        ),
        (
            "steps",
            ["--message-type", "sms", "--start", "2026-03-01T00:00"],
            ExportFilter(message_type="sms", start=T0.replace(day=1, hour=0) - timedelta(hours=1)),
        ),
    ]
    for number, (kind, args, filters) in enumerate(cases):
        out = tmp_path / f"{kind}-{number}.csv"
        if number == 0:  # once as its own process, the others in this one (faster)
            result = run_cli(db.url, kind, "--out", str(out), *args)
            assert result.returncode == 0, result.stderr
        else:
            assert cli.main(["--database-url", db.url, "export", kind, "--out", str(out), *args]) == 0
        with db.read_session() as s:
            assert out.read_bytes() == csv_bytes(s, kind, filters, tz=paris), (kind, args)
    bad = cli.main(
        ["--database-url", db.url, "export", "steps", "--out", str(tmp_path / "x.csv"), "--start", "yesterday"]
    )
    assert bad == 2 and "start" in capsys.readouterr().err


def test_export_file_names():
    assert export_file_name("steps") == "steps.csv"
    assert export_file_name("calendar", ExportFilter(start=T0, end=T0 + D)) == "calendar_2026-03-02_2026-03-03.csv"


@pytest.mark.slow
def test_large_export_is_streamed_with_bounded_memory(sqlite_db, tmp_path):
    rows = 80_000
    with sqlite_db.session() as s:
        contact = Contact(first_name="Bulk", last_name="Person", created_at=T0, updated_at=T0)
        s.add(contact)
        s.flush()
        s.execute(
            insert(AutomationCampaign),
            [
                {
                    "id": c,
                    "name": f"Campaign {c}",
                    "contact_id": contact.id,
                    "status": "active",
                    "start_at": T0,
                    "created_at": T0,
                    "updated_at": T0,
                }
                for c in range(1, rows // 10 + 1)
            ],
        )
        s.execute(
            insert(AutomationStep),
            [
                {
                    "campaign_id": i // 10 + 1,
                    "position": i % 10,
                    "name": f"Step {i} " + "x" * 60,
                    "message_type": "email",
                    "scheduled_at": T0 + timedelta(minutes=i),
                    "due_at": T0,
                    "status": "pending",
                    "idempotency_key": f"k{i}",
                    "subject": "",
                    "body": "",
                    "delay_days": 0,
                    "delay_hours": 0,
                    "attempts": 0,
                }
                for i in range(rows)
            ],
        )
    out = tmp_path / "steps.csv"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = run_cli(sqlite_db.url, "steps", "--out", str(out))
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert result.returncode == 0, result.stderr
    size_mb = out.stat().st_size / 1e6
    with out.open("rb") as f:
        assert sum(1 for _ in f) == rows + 1
    # The file is larger than what the process grows by: the rows were not all held.
    assert size_mb > 10
    assert peak_mb < 200 or before / 1024 >= 200, f"peak {peak_mb:.0f} MB for a {size_mb:.0f} MB export"
