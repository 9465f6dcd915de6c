"""Database setup: one engine per process, short transactions decided by the caller.

SQLite is set up for a dashboard and several runners sharing one file: WAL (readers
never block the writer), foreign keys on, a busy timeout, and write transactions
that take the write lock up front (`BEGIN IMMEDIATE`) so that concurrent writers
wait for each other instead of failing half-way with "database is locked".
Read-only sessions start a deferred transaction, so they never wait for a writer.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Engine,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement

from automations.domain.config import Settings, get_settings
from automations.domain.timeutil import as_utc

SQLITE_BUSY_TIMEOUT_S = 60
SQLITE_LOWER = "automations_lower"


def _python_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class folded(FunctionElement[str]):
    """`text` in lower case for case-insensitive comparisons, for every alphabet:
    PostgreSQL's lower(); on SQLite, whose lower() leaves "É" or "Ø" as they are,
    Python's str.lower registered on each connection. Compare it with a value
    lowered by `str.lower`."""

    type = String()
    name = "folded"
    inherit_cache = True


def folding_for(text: str) -> Any:
    """How to lower a column to compare it with `text`: the database's own lower()
    when `text` is ASCII (faster on SQLite, and ASCII letters only ever match
    letters that lower to ASCII), else `folded`."""
    return func.lower if text.isascii() else folded


@compiles(folded)
def _folded(element: folded, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def is_transient(exc: BaseException) -> bool:
    """An error that says "try again": the connection was terminated or failed
    over, SQLite stayed locked past the busy timeout, a deadlock or serialization
    failure, the pool had no connection in time. Not a bug in the statement."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    # psycopg's AdminShutdown, SerializationFailure and DeadlockDetected, and
    # sqlite3's "database is locked", all arrive as OperationalError.
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError))


def make_engine(url: str, *, busy_timeout: float = SQLITE_BUSY_TIMEOUT_S, **kwargs: Any) -> Engine:
    """An engine for `url`, with the SQLite pragmas and locking described above."""
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below emit BEGIN itself.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # SQLite's own lower() folds ASCII only; see `folded`.
            dbapi_conn.create_function(SQLITE_LOWER, 1, _python_lower, deterministic=True)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class Database:
    """The engine and session factories of one process.

    `session()` is a write transaction (committed on success, rolled back on any
    error, so nothing is half-written); `read_session()` only reads.
    """

    def __init__(self, url: str | None = None, settings: Settings | None = None, **engine_kwargs: Any):
        self.settings = settings or get_settings()
        self.url = url or self.settings.database_url
        engine_kwargs.setdefault("busy_timeout", self.settings.sqlite_busy_timeout)
        self.engine = make_engine(self.url, **engine_kwargs)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        reader = self.engine.execution_options(sqlite_begin="DEFERRED") if self.is_sqlite else self.engine
        self._read = sessionmaker(reader, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with self._read() as session:
            try:
                yield session
            finally:
                session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


def id_in(session: Session, column: Any, ids: Collection[int]) -> ColumnElement[bool]:
    """`column IN (ids)`; on PostgreSQL `column = ANY(:ids)` with the ids as one
    array: the same plan, but a short statement that psycopg prepares once, where
    a runner batch's 500 placeholders were parsed again on every execution."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(ids)


def table_of(model: type[Any]) -> Table:
    """A mapped class's table, typed as the `Table` it is (its `__table__` is typed as any FROM clause)."""
    return cast(Table, model.__table__)


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` into `table` in the session's transaction, in one statement.

    Every row has the same keys, and gives every column that has a Python-side
    default (the PostgreSQL statement cannot apply those).

    SQLite: an executemany, a loop in C. PostgreSQL: a plain executemany is one
    INSERT per row, and a multi-row VALUES list (SQLAlchemy's "insertmanyvalues")
    is a new 100 kB statement for psycopg to parse each time; instead the rows
    travel as one JSON document (serialised in C) that `json_populate_recordset`
    turns back into rows of the table's own column types: one short statement,
    prepared once, a third of the client time of the alternatives."""
    if not rows:
        return
    rows = list(rows)
    names = tuple(rows[0])
    _check_columns(table, names)
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), rows)
        return
    session.execute(_json_insert(table, names), {"rows": json.dumps(rows, default=_json_value)})


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()  # what UTCDateTime would bind
    raise TypeError(f"cannot insert a {type(value).__name__} with insert_rows")


@lru_cache(maxsize=64)
def _check_columns(table: Table, names: tuple[str, ...]) -> None:
    # Refused on SQLite too, so that code tried there works on PostgreSQL.
    missing = [c.name for c in table.columns if c.name not in names and c.default is not None]
    if missing:
        raise ValueError(f"insert_rows into {table.name} needs {', '.join(missing)} (Python-side defaults)")


@lru_cache(maxsize=64)
def _json_insert(table: Table, names: tuple[str, ...]) -> Any:
    quote = _POSTGRES_IDENTIFIERS.quote
    target = _POSTGRES_IDENTIFIERS.format_table(table)
    columns = ", ".join(quote(table.c[name].name) for name in names)
    return text(
        f"INSERT INTO {target} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{target}, :rows)"
    )


_POSTGRES_IDENTIFIERS = postgresql.dialect().identifier_preparer
