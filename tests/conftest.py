"""Shared fixtures: every test gets its own, migrated database.

SQLite: a file in the test's temporary folder (copied from one migrated once per
session, which is much faster than migrating for every test).
PostgreSQL: a fresh schema in the server at $AUTOMATIONS_TEST_POSTGRES_URL
(default: the local server, database `test`). A test that needs PostgreSQL fails
when the server is missing; it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from automations.domain import migrate
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.timeutil import UTC

POSTGRES_URL = os.environ.get("AUTOMATIONS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# A fixed, timezone-aware "now" for tests that pass time in.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's .env or write to the real data/ folder."""
    for key in list(os.environ):
        if key.startswith("AUTOMATIONS_") and key != "AUTOMATIONS_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("AUTOMATIONS_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("AUTOMATIONS_DATABASE_URL", f"sqlite:///{tmp_path}/unused.db")
    # The suite runs at any hour: SMS quiet hours would hold the SMS of tests about
    # something else. The tests of quiet hours turn them on.
    monkeypatch.setenv("AUTOMATIONS_SMS_QUIET_HOURS", "off")
    from automations.domain.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def _migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template-db") / "migrated.db"
    db = Database(f"sqlite:///{path}", settings=Settings(_env_file=None))
    migrate.upgrade(db)
    db.dispose()
    return path


def new_sqlite_db(path: Path, template: Path) -> Database:
    shutil.copyfile(template, path)
    return Database(f"sqlite:///{path}", settings=Settings(_env_file=None))


@pytest.fixture
def sqlite_db(tmp_path: Path, _migrated_sqlite_file: Path) -> Iterator[Database]:
    db = new_sqlite_db(tmp_path / "automations.db", _migrated_sqlite_file)
    yield db
    db.dispose()


def postgres_schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema; yields its URL."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {POSTGRES_URL}: {exc}")
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def pg_db(pg_schema: str) -> Iterator[Database]:
    db = Database(pg_schema, settings=Settings(_env_file=None))
    migrate.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    """The same test on both supported databases."""
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")


def query_plan(db: Database, statement: sa.ClauseElement, *, prefer_indexes: bool = False) -> str:
    """The database's plan for `statement` (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on
    PostgreSQL), as text. `prefer_indexes` turns PostgreSQL's sequential scans off:
    the test tables are small, and a scan of a small table is what it would choose."""
    with db.read_session() as s:
        connection = s.connection()
        if prefer_indexes and not db.is_sqlite:
            connection.exec_driver_sql("SET enable_seqscan = off")
        compiled = statement.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
        return "\n".join(str(row) for row in connection.exec_driver_sql(prefix + str(compiled)))
