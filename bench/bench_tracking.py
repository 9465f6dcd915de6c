"""Tracking benchmark: the open pixel and tracked links of the real API server while a
runner sends email, and the inbound classifier over the corpus.

    python bench/bench_tracking.py                    # SQLite, fresh database
    python bench/bench_tracking.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Fills a fresh database with `--steps` sent email steps (each with a link) and
`--runner-steps` due email steps, starts local sinks (bench/sinks.py), a runner
(`runner.py --interval 1`, sending to the SMTP sink) and the API server
(`python -m automations api`), then `--processes` load processes, each with
`--concurrency` kept-alive connections (a small asyncio HTTP/1.1 client on uvloop,
cheap enough to leave the cores to the server), hit `/t/o/<token>` and
`/t/c/<token>` (half each, every token valid) for `--duration` seconds after a
warm-up: as fast as they are answered, or with `--rate N` on a fixed schedule of
N requests/s in all, each request's latency counted from when it was due.
Prints requests/s and latency p50/p95/p99, what the runner sent meanwhile, and,
after the server's clean stop (SIGTERM), whether every hit was written.

Then times `process_inbound` per message over tests/engagement/corpus/*.txt,
each in its own transaction: unmatched as they are, and matched (an
`In-Reply-To` naming one of our steps put first).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_runner import Sinks, drop_schemas, fill, fresh_database, runner_env  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from automations.domain.db import Database  # noqa: E402
from automations.domain.models import AutomationStep, ContactEvent, EngagementEvent  # noqa: E402
from automations.domain.timeutil import utcnow  # noqa: E402
from automations.engagement.tokens import load_tracking_key, make_token  # noqa: E402
from automations.services.engagement import process_inbound  # noqa: E402

CORPUS = ROOT / "tests" / "engagement" / "corpus"
LINK = "https://example.com/pricing?plan=team"
TOKEN = "bench"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(db: Database, steps: int, runner_steps: int) -> tuple[list[int], list[int]]:
    """`steps` sent email steps with a link (the ones recipients open), `runner_steps` due ones."""
    now = utcnow()
    fill(db, steps, "email", now - timedelta(hours=2))
    with db.session() as s:
        s.execute(
            update(AutomationStep).values(
                status="sent",
                executed_at=now - timedelta(hours=1),
                result={"message_id": "<bench@localhost>", "links": [LINK]},
            )
        )
        sent = list(s.scalars(select(AutomationStep.id).order_by(AutomationStep.id)))
    fill(db, runner_steps, "email", now)
    with db.read_session() as s:
        due = list(s.scalars(select(AutomationStep.id).where(AutomationStep.status == "pending")))
    return sent, due


def start_api(db: Database, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATIONS_")}
    env.update(AUTOMATIONS_DATABASE_URL=db.url, AUTOMATIONS_API_TOKEN=TOKEN)
    process = subprocess.Popen(
        [sys.executable, "-m", "automations", "api", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=(folder / "api.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/openapi.json", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the API did not start: {(folder / 'api.log').read_text()[-2000:]}")


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    """One GET on a kept-alive HTTP/1.1 connection; the status. A few lines of client, so
    that the load costs the two cores far less than the server it measures."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench-reader/1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return int(head[9:12])


async def _hammer(url: str, paths: list[str], concurrency: int, warmup: float, duration: float, rate: float) -> tuple:
    """`concurrency` clients of one kept-alive connection each; with `rate` (requests/s
    of this process), each client sends on a fixed schedule and a request's latency
    counts from when it was due (a slow answer delays the ones behind it, and that
    wait is counted too)."""
    latencies: list[float] = []
    errors = ok = 0
    began = time.perf_counter()
    measure_from, stop_at = began + warmup, began + warmup + duration
    host, port = url.removeprefix("http://").split(":")

    async def worker(offset: int) -> None:
        nonlocal errors, ok
        reader, writer = await asyncio.open_connection(host, int(port))
        i = offset
        gap = concurrency / rate if rate else 0.0
        # The warm-up (the server's step cache filling) runs unpaced; the schedule starts after it.
        due = measure_from + gap * offset / concurrency
        while (now := time.perf_counter()) < stop_at:
            if gap and now >= measure_from:
                if due > now:
                    await asyncio.sleep(due - now)
                now, due = due, due + gap
            path = paths[i % len(paths)]
            i += concurrency
            status = await _get(reader, writer, path)
            done = time.perf_counter()
            if status in (200, 302):
                ok += 1
            else:
                errors += 1
            if now >= measure_from:
                latencies.append(done - now)
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, errors, ok


def load_process(args: tuple[str, list[str], int, float, float, float]) -> tuple[list[float], int, int]:
    import uvloop

    return uvloop.run(_hammer(*args))


def corpus_timing(db: Database, sent: list[int]) -> None:
    messages = [path.read_bytes() for path in sorted(CORPUS.glob("*.txt"))]
    with db.read_session() as s:
        keys = list(s.scalars(select(AutomationStep.idempotency_key).where(AutomationStep.id.in_(sent[:200]))))
    for label, matched in (("unmatched", False), ("matched", True)):
        times: list[float] = []
        kinds: dict[str, int] = {}
        for run in range(3):
            for n, raw in enumerate(messages):
                head = f"X-Bench-Run: {label}-{run}-{n}\r\n".encode()
                if matched:
                    head += f"In-Reply-To: <{keys[(run * len(messages) + n) % len(keys)]}@localhost>\r\n".encode()
                began = time.perf_counter()
                with db.session() as s:
                    result = process_inbound(s, head + raw, source="api", now=utcnow())
                times.append(time.perf_counter() - began)
                kinds[result.classification] = kinds.get(result.classification, 0) + 1
        q = statistics.quantiles(times, n=100, method="inclusive")
        print(
            f"inbound  process_inbound, {len(messages)} corpus messages x3, {label}: "
            f"median {statistics.median(times) * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, "
            f"max {max(times) * 1000:.1f} ms  ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL server (a fresh schema); default SQLite")
    parser.add_argument("--steps", type=int, default=500, help="sent steps whose tokens are hit")
    parser.add_argument("--runner-steps", type=int, default=30000, help="due email steps the runner sends meanwhile")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--processes", type=int, default=2, help="load processes")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent requests per load process")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s in all, on a fixed schedule (default: as fast as answered)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = fresh_database(args.database_url, folder)
        sinks = Sinks()
        runner = api = None
        try:
            sent, due = prepare(db, args.steps, args.runner_steps)
            key = load_tracking_key(db)
            paths = []
            for step_id in sent:
                paths.append(f"/t/o/{make_token(key, 'o', step_id)}")
                paths.append(f"/t/c/{make_token(key, 'c', step_id, 0)}")
            api, url = start_api(db, folder)
            env = runner_env(db, folder, sinks)
            env["AUTOMATIONS_PUBLIC_URL"] = url
            runner = subprocess.Popen(
                [sys.executable, str(ROOT / "runner.py"), "--interval", "1"],
                env=env,
                stdout=(folder / "runner.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            time.sleep(2)  # the runner is sending
            sent_before, _ = sinks.counts()
            jobs = [
                (
                    url,
                    paths[k :: args.processes],
                    args.concurrency,
                    args.warmup,
                    args.duration,
                    args.rate / args.processes,
                )
                for k in range(args.processes)
            ]
            with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
                results = pool.map(load_process, jobs)
            sent_after, _ = sinks.counts()
            latencies = sorted(x for lat, _, _ in results for x in lat)
            errors = sum(e for _, e, _ in results)
            answered = sum(n for _, _, n in results)  # warm-up included
            q = statistics.quantiles(latencies, n=100, method="inclusive")
            print(
                f"tracking {db.engine.dialect.name}: {len(latencies) / args.duration:,.0f} requests/s "
                f"({f'paced at {args.rate:,.0f}/s' if args.rate else 'as fast as answered'}) over "
                f"{args.duration:.0f} s ({args.processes} processes x {args.concurrency} concurrent, /t/o and /t/c "
                f"over {len(sent):,} steps), p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, "
                f"p99 {q[98] * 1000:.1f} ms, max {latencies[-1] * 1000:.0f} ms, {errors} errors",
                flush=True,
            )
            print(
                f"runner   meanwhile sent {sent_after - sent_before:,} emails "
                f"({(sent_after - sent_before) / args.duration:,.0f}/s; {len(due):,} were due)",
                flush=True,
            )
            runner.send_signal(signal.SIGTERM)
            runner.wait(timeout=60)
            runner = None
            api.send_signal(signal.SIGTERM)
            api.wait(timeout=60)
            api = None
            log_tail = (folder / "api.log").read_text(errors="replace").strip().splitlines()[-5:]
            with db.read_session() as s:
                events = s.scalar(select(func.count()).select_from(EngagementEvent)) or 0
                clicked = (
                    s.scalar(select(func.count()).select_from(ContactEvent).where(ContactEvent.kind == "link_clicked"))
                    or 0
                )
                opened = s.scalar(select(func.count()).where(AutomationStep.opened_at.is_not(None))) or 0
            print(
                f"written  after SIGTERM: {events:,} engagement events for {answered:,} hits answered "
                f"({'none lost' if events == answered else 'MISMATCH'}), {clicked:,} link_clicked events, "
                f"{opened:,} steps opened",
                flush=True,
            )
            if any("tracking" in line for line in log_tail):
                print("api log  " + "\n         ".join(log_tail), flush=True)
            corpus_timing(db, sent)
        finally:
            for process in (runner, api):
                if process is not None:
                    process.kill()
                    process.wait()
            sinks.close()
            db.dispose()
            drop_schemas(args.database_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
