"""Time and peak memory of CSV exports on a big database, through the real command.

    python -m automations demo --contacts 100000     # about 1,000,000 steps
    python bench/bench_export.py [--database-url URL] [--kinds steps calendar ...]

Each export runs as `python -m automations export KIND --out FILE` in its own
process; the peak resident memory of that process is what is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(url: str, kind: str, out: Path) -> tuple[float, float, int, int]:
    """Seconds, peak MB, rows and bytes of one export in a fresh process."""
    started = time.perf_counter()
    code = (
        "import resource, sys; from automations.cli.main import main; rc = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--database-url", url, "export", kind, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak_mb = int(result.stderr.strip().splitlines()[-1]) / 1024
    with out.open("rb") as f:
        rows = sum(1 for _ in f) - 1
    return seconds, peak_mb, rows, out.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("AUTOMATIONS_DATABASE_URL"))
    parser.add_argument(
        "--kinds", nargs="+", default=["steps", "calendar", "campaigns", "contacts", "follow-ups", "stats"]
    )
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or set AUTOMATIONS_DATABASE_URL")
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds:
            seconds, peak_mb, rows, size = export(args.database_url, kind, Path(folder) / f"{kind}.csv")
            print(
                f"{kind:<11} {rows:>10,} rows {size / 1e6:8.1f} MB in {seconds:6.1f} s, peak memory {peak_mb:6.1f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
