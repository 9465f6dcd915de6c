"""The runner: `python runner.py` executes every due step on time until stopped.

python runner.py                 # tick every 5 s until SIGTERM/SIGINT
python runner.py --once          # execute everything due now, then exit 0
python runner.py --interval 1 --batch-size 500 --concurrency 16 --verbose
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from automations.domain.config import get_settings
from automations.domain.db import Database
from automations.runner.engine import DEFAULT_LEASE_S, Runner


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python runner.py", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="execute everything due now, then exit")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between ticks (default 5)")
    parser.add_argument("--batch-size", type=int, default=200, help="steps claimed at a time (default 200)")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="parallel deliveries for email/SMS/webhook (default 16)"
    )
    parser.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE_S,
        help=f"seconds a claim outlives a runner that stopped renewing it (killed, frozen, cut off); "
        f"a live runner renews its claims every third of this, so a killed runner's steps are taken "
        f"over after about --lease plus one --interval (default {DEFAULT_LEASE_S:.0f})",
    )
    parser.add_argument("--runner-id", default=None, help="name in the heartbeat (default host:pid)")
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default $AUTOMATIONS_DATABASE_URL)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Per-request lines of the HTTP client would repeat the per-step lines.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.interval <= 0 or args.batch_size < 1 or args.concurrency < 1 or args.lease <= 0:
        print("error: --interval, --batch-size, --concurrency and --lease must be positive", file=sys.stderr)
        return 2
    settings = get_settings()
    db = Database(
        args.database_url or os.environ.get("AUTOMATIONS_DATABASE_URL") or settings.database_url, settings=settings
    )
    runner = Runner(
        db,
        settings,
        runner_id=args.runner_id,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        lease_seconds=args.lease,
    )
    if settings.imap_host:
        logging.getLogger("automations.runner").info(
            "polling the IMAP folder %r of %s at %s every %ss",
            settings.imap_folder,
            settings.imap_username,
            settings.imap_host,
            settings.imap_interval,
        )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log = logging.getLogger("automations.runner")
        if stopping.is_set():
            # A second signal: stop at once. Steps in flight keep their claims
            # until the lease runs out; a repeat carries the same idempotency key.
            log.warning("%s received again: stopping at once", signal.Signals(signum).name)
            os._exit(130 if signum == signal.SIGINT else 143)
        stopping.set()
        log.info(
            "%s received: claiming nothing more, giving back unstarted steps, finishing the deliveries in flight "
            "(send it again to stop at once)",
            signal.Signals(signum).name,
        )
        runner.stop()

    stopping = threading.Event()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if args.once:
            summary = runner.tick()
            return 1 if summary.errors else 0
        runner.run(args.interval)
        return 0
    finally:
        runner.close()
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
