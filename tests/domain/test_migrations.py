"""`python -m automations migrate` from empty to head, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from automations.domain import migrate
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import Base
from automations.services import contacts

REPO = Path(__file__).resolve().parents[2]


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOMATIONS_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "automations", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_schema_matches_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_migrate_creates_the_schema_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path}/nested/dir/automations.db"
    result = _cli(url, "migrate")
    assert result.returncode == 0, result.stderr
    assert migrate.head_revision() in result.stdout
    db = Database(url, settings=Settings(_env_file=None))
    assert migrate.current_revision(db) == migrate.head_revision()
    _assert_schema_matches_models(db)
    # running it again is harmless
    assert _cli(url, "migrate").returncode == 0


def test_migrate_creates_the_schema_on_postgresql(pg_schema):
    result = _cli(pg_schema, "setup")
    assert result.returncode == 0, result.stderr
    assert "6 created" in result.stdout
    db = Database(pg_schema, settings=Settings(_env_file=None))
    assert migrate.current_revision(db) == migrate.head_revision()
    _assert_schema_matches_models(db)
    with db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {
        "contacts",
        "automation_templates",
        "automation_campaigns",
        "automation_steps",
        "step_attempts",
        "scheduled_followups",
        "followup_rules",
        "runner_heartbeats",
    } <= tables
    db.dispose()


def test_sqlite_is_set_up_for_several_processes(sqlite_db):
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_concurrent_sqlite_writers_wait_instead_of_failing(sqlite_db, tmp_path):
    """Two processes writing at once: both succeed (BEGIN IMMEDIATE + busy timeout)."""
    script = (
        "import sys\n"
        "from automations.domain.db import Database\n"
        "from automations.services import contacts\n"
        "db = Database(sys.argv[1])\n"
        "for i in range(60):\n"
        "    with db.session() as s:\n"
        # read, then write in the same transaction: the pattern that fails with
        # "database is locked" when the write lock is not taken up front
        "        n = contacts.search_contacts(s, contacts.ContactFilter(search=sys.argv[2]))[1]\n"
        "        contacts.create_contact(s, {'first_name': sys.argv[2] + str(n)})\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, sqlite_db.url, name], cwd=REPO, stderr=subprocess.PIPE, text=True
        )
        for name in ("alpha", "beta")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with sqlite_db.read_session() as s:
        assert contacts.search_contacts(s)[1] == 120
