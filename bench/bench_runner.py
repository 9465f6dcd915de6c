"""Runner benchmark: fills a fresh database with due steps of each type, runs the
runner against local sinks (aiosmtpd; an HTTP server for webhooks and the SMS
API, in their own process) and prints what it measured.

    python bench/bench_runner.py                      # everything, default sizes
    python bench/bench_runner.py --only task,email    # some sections
    python bench/bench_runner.py --big 1000000        # the index section at 1M steps
    python bench/bench_runner.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Sections:
  task/email/sms/webhook  steps/s draining N due steps (one runner, in-process),
                          lag p50/p95/p99 (executed minus due, a drain: queueing
                          included), and for email/webhook the bare channel loop
                          (smtplib on one connection; httpx with the same
                          concurrency) and the ratio runner/bare
  index                   a tick with 10,000 vs --big pending future steps
  lag                     `runner.py --interval 1` on steps falling due over 20 s
  memory                  peak RSS of `runner.py --once` draining 100,000 due steps
  faults                  default options against misbehaving servers: takeover
                          time after SIGKILL, SIGTERM exit time with deliveries
                          hanging, duplicates under a slow SMTP relay (bench/faults.py)
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402

from automations.domain import migrate  # noqa: E402
from automations.domain.config import Settings  # noqa: E402
from automations.domain.db import Database  # noqa: E402
from automations.domain.models import AutomationCampaign, AutomationStep, Contact  # noqa: E402
from automations.domain.timeutil import utcnow  # noqa: E402
from automations.runner.claims import claimable_query  # noqa: E402
from automations.runner.engine import Runner  # noqa: E402

SECRET = "whsec_" + "YmVuY2htYXJrLXNpZ25pbmctc2VjcmV0IQ=="


# --- setup -------------------------------------------------------------------------


class Sinks:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "sinks.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        ready = self.process.stdout.readline().split()  # type: ignore[union-attr]
        self.smtp_port, self.http_port = int(ready[1]), int(ready[2])

    def counts(self) -> tuple[int, int]:
        self.process.stdin.write("\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        smtp, http = self.process.stdout.readline().split()  # type: ignore[union-attr]
        return int(smtp), int(http)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


CREATED_SCHEMAS: list[str] = []


def drop_schemas(url: str | None) -> None:
    """Remove the PostgreSQL schemas this run created."""
    if not url or not CREATED_SCHEMAS:
        return
    admin = Database(url, settings=Settings(_env_file=None))
    with admin.engine.connect() as conn:
        for schema in CREATED_SCHEMAS:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.commit()
    admin.dispose()


def fresh_database(url: str | None, folder: Path) -> Database:
    if url and url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        CREATED_SCHEMAS.append(schema)
        admin = Database(url, settings=Settings(_env_file=None))
        with admin.engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            conn.commit()
        admin.dispose()
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{folder}/bench-{uuid.uuid4().hex[:6]}.db"
    db = Database(url, settings=Settings(_env_file=None))
    migrate.upgrade(db)
    return db


def fill(
    db: Database,
    count: int,
    message_type: str,
    due: datetime | list[datetime],
    *,
    url: str | None = None,
    chunk: int = 20000,
) -> None:
    """`count` one-step campaigns due at `due` (one time, or one per step)."""
    tag = uuid.uuid4().hex[:6]
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        with db.session() as s:
            contacts = list(
                s.scalars(
                    insert(Contact).returning(Contact.id, sort_by_parameter_order=True),
                    [
                        {
                            "first_name": f"F{start + i}",
                            "last_name": tag,
                            "email": f"p{start + i}.{tag}@example.com",
                            "phone": "+14155550100",
                            "company": "",
                            "timezone": "UTC",
                            "custom_fields": {},
                            "email_opt_out": False,
                            "sms_opt_out": False,
                            "created_at": utcnow(),
                            "updated_at": utcnow(),
                        }
                        for i in range(n)
                    ],
                )
            )
            campaigns = list(
                s.scalars(
                    insert(AutomationCampaign).returning(AutomationCampaign.id, sort_by_parameter_order=True),
                    [
                        {
                            "name": "Bench",
                            "contact_id": c,
                            "status": "active",
                            "start_at": utcnow(),
                            "created_at": utcnow(),
                            "updated_at": utcnow(),
                        }
                        for c in contacts
                    ],
                )
            )
            s.execute(
                insert(AutomationStep),
                [
                    {
                        "campaign_id": c,
                        "position": 0,
                        "name": "Step",
                        "message_type": message_type,
                        "delay_days": 0,
                        "delay_hours": 0,
                        "subject": "Hello {{ contact.first_name }}",
                        "body": "Hi {{ contact.first_name | default('there') }}, this is {{ campaign.name }}.",
                        "webhook_url": url,
                        "scheduled_at": due[start + i] if isinstance(due, list) else due,
                        "due_at": due[start + i] if isinstance(due, list) else due,
                        "status": "pending",
                        "attempts": 0,
                        "idempotency_key": uuid.uuid4().hex,
                    }
                    for i, c in enumerate(campaigns)
                ],
            )


def fill_future(db: Database, count: int, due: datetime, per_campaign: int = 1000) -> None:
    """`count` pending steps far in the future (campaigns of `per_campaign` steps,
    inserted without the ORM: a million rows in well under a minute)."""
    with db.session() as s:
        contact = s.scalar(
            insert(Contact).returning(Contact.id),
            [
                {
                    "first_name": "Future",
                    "last_name": uuid.uuid4().hex[:6],
                    "email": None,
                    "phone": None,
                    "company": "",
                    "timezone": "UTC",
                    "custom_fields": {},
                    "email_opt_out": False,
                    "sms_opt_out": False,
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                }
            ],
        )
    steps = AutomationStep.__table__
    for start in range(0, count, per_campaign * 20):
        with db.session() as s:
            n_campaigns = min(20, -(-(count - start) // per_campaign))
            campaigns = list(
                s.scalars(
                    insert(AutomationCampaign).returning(AutomationCampaign.id, sort_by_parameter_order=True),
                    [
                        {
                            "name": "Future",
                            "contact_id": contact,
                            "status": "active",
                            "start_at": utcnow(),
                            "created_at": utcnow(),
                            "updated_at": utcnow(),
                        }
                        for _ in range(n_campaigns)
                    ],
                )
            )
            rows = []
            for k, campaign in enumerate(campaigns):
                for position in range(min(per_campaign, count - start - k * per_campaign)):
                    rows.append(
                        {
                            "campaign_id": campaign,
                            "position": position,
                            "name": "Later",
                            "message_type": "task",
                            "delay_days": 0,
                            "delay_hours": 0,
                            "subject": "Later",
                            "body": "",
                            "scheduled_at": due,
                            "due_at": due,
                            "status": "pending",
                            "attempts": 0,
                            "idempotency_key": uuid.uuid4().hex,
                        }
                    )
            s.connection().execute(steps.insert(), rows)


def lags(db: Database, message_type: str | None = None) -> tuple[float, float, float]:
    with db.read_session() as s:
        query = select(AutomationStep.executed_at, AutomationStep.due_at).where(AutomationStep.executed_at.is_not(None))
        if message_type:
            query = query.where(AutomationStep.message_type == message_type)
        values = sorted((e - d).total_seconds() for e, d in s.execute(query))
    if not values:
        return (0.0, 0.0, 0.0)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], q[98]


def settings_for(folder: Path, sinks: Sinks | None) -> Settings:
    extra = {}
    if sinks is not None:
        extra = {
            "smtp_host": "127.0.0.1",
            "smtp_port": sinks.smtp_port,
            "sms_api_url": f"http://127.0.0.1:{sinks.http_port}",
            "sms_account_sid": "AC1",
            "sms_auth_token": "token",
            "sms_from": "+15005550006",
        }
    return Settings(
        _env_file=None, outbox_dir=folder / "outbox", webhook_secret=SECRET, webhook_allow_private=True, **extra
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- bare channel loops ------------------------------------------------------------


def bare_smtp(port: int, count: int) -> float:
    """smtplib on one connection sending `count` distinct messages (one per
    recipient, with the headers the runner sets), none of the runner's code."""
    began = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(count):
            message = EmailMessage()
            message["From"], message["To"] = "automations@localhost", f"p{i}@example.com"
            message["Subject"] = f"Hello F{i}"
            message["Date"] = formatdate(usegmt=True)
            message["Message-ID"] = f"<{uuid.uuid4().hex}@localhost>"
            message["List-Unsubscribe"] = "<mailto:automations@localhost?subject=unsubscribe>"
            message.set_content(f"Hi F{i}, this is Bench.")
            smtp.send_message(message)
    return count / (time.perf_counter() - began)


def bare_http(port: int, count: int, concurrency: int) -> float:
    url = f"http://127.0.0.1:{port}/hook"
    body = b'{"event":"automation.step","data":{}}'
    with httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)) as client:
        began = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(
                pool.map(
                    lambda _: client.post(url, content=body, headers={"content-type": "application/json"}), range(count)
                )
            )
    return count / (time.perf_counter() - began)


# --- sections ----------------------------------------------------------------------


def bare_loop(sinks: Sinks | None, message_type: str, count: int, concurrency: int) -> float | None:
    if sinks is None or message_type == "task":
        return None
    if message_type == "email":
        return bare_smtp(sinks.smtp_port, count)
    return bare_http(sinks.http_port, count, concurrency)


def section_type(args: argparse.Namespace, folder: Path, sinks: Sinks | None, message_type: str) -> None:
    count = args.n_task if message_type == "task" else args.n_io
    # The bare loop runs before and after the runner (the mean is compared), so a
    # change in the load of the shared machine does not favour either side.
    bare_before = bare_loop(sinks, message_type, count, args.concurrency)
    db = fresh_database(args.database_url, folder)
    fill(
        db,
        count,
        message_type,
        utcnow() - timedelta(seconds=1),
        url=f"http://127.0.0.1:{sinks.http_port}/hook" if sinks else None,
    )
    runner = Runner(db, settings_for(folder, sinks), batch_size=args.batch_size, concurrency=args.concurrency)
    _ = runner.channels  # build the channels (and the secret) outside the timing
    began = time.perf_counter()
    summary = runner.execute_due_steps()
    elapsed = time.perf_counter() - began
    runner.close()
    rate = summary.executed / elapsed
    p50, p95, p99 = lags(db)
    line = (
        f"{message_type:8} {summary.executed:>7} steps in {elapsed:6.2f}s = {rate:8.0f} steps/s"
        f"   lag p50/p95/p99 {p50:.2f}/{p95:.2f}/{p99:.2f}s (drain)"
    )
    bare_after = bare_loop(sinks, message_type, count, args.concurrency)
    if bare_before and bare_after:
        bare = (bare_before + bare_after) / 2
        what = "smtplib, 1 connection" if message_type == "email" else f"httpx x{args.concurrency}"
        line += f"   bare {what} {bare_before:.0f}/{bare_after:.0f}/s  ratio {rate / bare:.2f}"
    print(line, flush=True)
    db.dispose()


def section_index(args: argparse.Namespace, folder: Path) -> None:
    db = fresh_database(args.database_url, folder)
    future = utcnow() + timedelta(days=30)
    results = {}
    settings = settings_for(folder, None)
    total_future = 0
    # Warm up (statement caches, compiled templates) so the first size is not penalised.
    fill(db, 200, "task", utcnow() - timedelta(seconds=1))
    warm = Runner(db, settings, batch_size=args.batch_size)
    warm.tick()
    warm.close()
    for size in (10_000, args.big):
        began = time.perf_counter()
        fill_future(db, size - total_future, future)
        total_future = size
        fill_seconds = time.perf_counter() - began
        with db.session() as s:
            if db.is_sqlite:
                s.execute(text("ANALYZE"))
        runner = Runner(db, settings, batch_size=args.batch_size)
        busy_times = []
        for _ in range(5):  # the median of five rounds: the machine is shared
            fill(db, args.index_due, "task", utcnow() - timedelta(seconds=1))
            began = time.perf_counter()
            runner.tick()
            busy_times.append(time.perf_counter() - began)
        busy = statistics.median(busy_times)
        idle_times = []
        for _ in range(20):
            began = time.perf_counter()
            runner.tick()
            idle_times.append(time.perf_counter() - began)
        runner.close()
        results[size] = (busy, statistics.median(idle_times))
        print(
            f"index    {size:>9,} future steps (filled in {fill_seconds:.0f}s): tick draining "
            f"{args.index_due} due (median of 5) = {busy * 1000:7.1f} ms, "
            f"empty tick = {results[size][1] * 1000:6.2f} ms",
            flush=True,
        )
    small, big = results[10_000], results[args.big]
    print(
        f"index    slowdown {args.big:,} vs 10,000: draining tick x{big[0] / small[0]:.2f}, "
        f"empty tick x{big[1] / small[1]:.2f}",
        flush=True,
    )
    with db.read_session() as s:
        query = claimable_query(utcnow(), 200, postgres=not db.is_sqlite)
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
        if not db.is_sqlite:  # as the runner runs it (claims._claimable_ids_postgres)
            s.execute(text("SET LOCAL enable_sort = off"))
        plan = [" ".join(str(c) for c in row) for row in s.execute(text(prefix + str(compiled)))]
    print("index    claim query plan: " + " | ".join(plan), flush=True)
    db.dispose()


def runner_env(db: Database, folder: Path, sinks: Sinks | None) -> dict[str, str]:
    env = {
        **os.environ,
        "AUTOMATIONS_DATABASE_URL": db.url,
        "AUTOMATIONS_OUTBOX_DIR": str(folder / "outbox"),
        "AUTOMATIONS_WEBHOOK_SECRET": SECRET,
        "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    if sinks is not None:
        env.update(AUTOMATIONS_SMTP_HOST="127.0.0.1", AUTOMATIONS_SMTP_PORT=str(sinks.smtp_port))
    return env


def section_lag(args: argparse.Namespace, folder: Path, sinks: Sinks) -> None:
    db = fresh_database(args.database_url, folder)
    start = utcnow() + timedelta(seconds=3)
    per_type = args.lag_steps // 3
    spread = timedelta(seconds=20)
    for message_type in ("task", "email", "webhook"):
        times = [start + spread * i / per_type for i in range(per_type)]
        fill(db, per_type, message_type, times, url=f"http://127.0.0.1:{sinks.http_port}/hook")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "runner.py"), "--interval", "1"],
        env=runner_env(db, folder, sinks),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep((start + spread - utcnow()).total_seconds() + 3)
    process.send_signal(signal.SIGTERM)
    process.wait()
    p50, p95, p99 = lags(db)
    with db.read_session() as s:
        done = s.scalar(
            select(text("count(*)")).select_from(AutomationStep).where(AutomationStep.executed_at.is_not(None))
        )
    print(
        f"lag      runner.py --interval 1, {done}/{per_type * 3} steps due over 20 s: "
        f"lag p50/p95/p99 {p50:.2f}/{p95:.2f}/{p99:.2f}s",
        flush=True,
    )
    db.dispose()


def section_memory(args: argparse.Namespace, folder: Path) -> None:
    db = fresh_database(args.database_url, folder)
    fill(db, args.n_memory, "task", utcnow() - timedelta(seconds=1))
    code = (
        "import resource, sys, runpy; sys.argv = ['runner.py', '--once', '--batch-size', "
        f"'{args.batch_size}']\n"
        "try:\n    runpy.run_path('runner.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stdout)"
    )
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=runner_env(db, folder, None),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - began
    peak = int(done.stdout.strip().splitlines()[-1]) / 1024
    print(
        f"memory   runner.py --once draining {args.n_memory:,} due task steps: {elapsed:.1f}s "
        f"({args.n_memory / elapsed:.0f} steps/s incl. start-up), peak RSS {peak:.0f} MB",
        flush=True,
    )
    db.dispose()


def section_faults(args: argparse.Namespace, folder: Path) -> None:
    import faults

    for case in (faults.takeover, faults.sigterm, faults.slow_smtp):
        db = fresh_database(args.database_url, folder)
        env = runner_env(db, folder, None)
        env.pop("AUTOMATIONS_WEBHOOK_TIMEOUT", None)
        case(db, env, fill)
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="task,email,sms,webhook,index,lag,memory,faults")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite files)")
    parser.add_argument("--n-task", type=int, default=20_000)
    parser.add_argument("--n-io", type=int, default=3_000)
    parser.add_argument("--n-memory", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--index-due", type=int, default=1_000)
    parser.add_argument("--lag-steps", type=int, default=1_500)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    # The runner logs a line per step, as in production (to nowhere here).
    logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sections = args.only.split(",")
    print(
        f"runner benchmark on {'PostgreSQL' if args.database_url else 'SQLite'}, "
        f"{os.cpu_count()} cores, batch {args.batch_size}, concurrency {args.concurrency}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sinks = Sinks() if {"email", "sms", "webhook", "lag"} & set(sections) else None
        try:
            for name in ("task", "email", "sms", "webhook"):
                if name in sections:
                    section_type(args, folder, sinks, name)  # type: ignore[arg-type]
            if "index" in sections:
                section_index(args, folder)
            if "lag" in sections:
                section_lag(args, folder, sinks)  # type: ignore[arg-type]
            if "memory" in sections:
                section_memory(args, folder)
            if "faults" in sections:
                section_faults(args, folder)
        finally:
            if sinks is not None:
                sinks.close()
            drop_schemas(args.database_url)
    print(f"bench process peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
