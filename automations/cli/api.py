"""`python -m automations api [--host 127.0.0.1] [--port 8000]`: serve the REST API."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from automations.domain.config import get_settings


def register(subparsers: Any) -> None:
    from automations.cli.main import open_database

    def cmd_api(args: argparse.Namespace) -> int:
        import uvicorn

        from automations.api import create_app
        from automations.domain import migrate

        settings = get_settings()
        token = settings.api_token
        if token is None or not token.get_secret_value().strip():
            print(
                "error: AUTOMATIONS_API_TOKEN is not set; the API refuses to start without "
                "a token (every request must send 'Authorization: Bearer <token>')",
                file=sys.stderr,
            )
            return 2
        db = open_database(args)
        if migrate.current_revision(db) != migrate.head_revision():
            print(
                "error: the database schema is not up to date; run 'python -m automations setup' first",
                file=sys.stderr,
            )
            return 2
        app = create_app(db, settings)
        # No access log by default: a line per request costs more than a tracking hit
        # itself, and its URLs would carry recipients' tokens.
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=args.access_log)
        db.dispose()
        return 0

    p = subparsers.add_parser("api", help="serve the REST API (needs AUTOMATIONS_API_TOKEN)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--access-log", action="store_true", help="log every request (default: errors and start-up only)")
    p.set_defaults(handler=cmd_api)
