"""The admin command line: `python -m automations <command>`.

Each command lives in the module that owns it and registers itself through a
`register(subparsers)` function; this module only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from automations.domain.db import Database
from automations.domain.errors import DomainError

# Modules that contribute commands (each has `register(subparsers)`).
COMMAND_MODULES = [
    "automations.cli.core",
    "automations.cli.api",
    "automations.cli.export",
    "automations.cli.imports",
]


def open_database(args: argparse.Namespace) -> Database:
    return Database(args.database_url)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m automations",
        description="Automations admin commands.",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("AUTOMATIONS_DATABASE_URL"),
        help="SQLAlchemy URL (default: $AUTOMATIONS_DATABASE_URL or sqlite:///data/automations.db)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
