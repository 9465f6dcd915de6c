"""Contacts import benchmark: writes a CSV file of N contacts (names with
accents, emails, phones, tags and a custom field), imports it into a fresh
database with `python -m automations import contacts` as a user would, and
prints the rows per second.

    python bench/bench_import.py                 # 100,000 rows on SQLite
    python bench/bench_import.py --rows 1000000
    python bench/bench_import.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
FIRST = ["Jürgen", "Zoë", "Ana", "Émile", "Bob", "Chloé", "Søren", "Mia", "Łukasz", "Ngozi"]


def write_file(path: Path, rows: int) -> None:
    rng = random.Random(3)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["first_name", "last_name", "email", "phone", "company", "tags", "plan"])
        for i in range(rows):
            out.writerow([rng.choice(FIRST), f"Last{i}", f"user{i}@example.com", f"+1415555{i % 10_000:04d}",
                          "ACME", "lead;trial", rng.choice(["gold", "silver"])])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a new SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "contacts.csv"
        write_file(path, args.rows)
        url = args.database_url
        if url:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with sa.create_engine(url).connect() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                conn.commit()
            url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:///{folder}/bench.db"
        command = [sys.executable, "-m", "automations", "--database-url", url]
        subprocess.run([*command, "setup"], cwd=ROOT, check=True, capture_output=True)
        began = time.perf_counter()
        done = subprocess.run([*command, "import", "contacts", str(path)], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            sys.exit(done.stderr)
        print(done.stdout.splitlines()[0])
        print(
            f"import   {args.rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) in {seconds:.1f}s = "
            f"{args.rows / seconds:,.0f} rows/s ({'PostgreSQL' if args.database_url else 'SQLite'}, "
            "python -m automations import contacts, start to exit)"
        )
        if args.database_url:
            with sa.create_engine(args.database_url).connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                conn.commit()


if __name__ == "__main__":
    main()
