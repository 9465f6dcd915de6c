"""Core commands: migrate, seed-templates, setup, demo, makemigration."""

from __future__ import annotations

import argparse
import time
from typing import Any

from automations.domain import migrate
from automations.services.seed import seed_system_templates


def register(subparsers: Any) -> None:
    from automations.cli.main import open_database

    def cmd_migrate(args: argparse.Namespace) -> int:
        db = open_database(args)
        migrate.upgrade(db, args.revision)
        print(f"schema at revision {migrate.current_revision(db)} ({db.engine.dialect.name})")
        return 0

    def cmd_seed(args: argparse.Namespace) -> int:
        db = open_database(args)
        with db.session() as session:
            result = seed_system_templates(session)
        print(f"system templates: {result.created} created, {result.updated} updated, {result.unchanged} unchanged")
        return 0

    def cmd_setup(args: argparse.Namespace) -> int:
        cmd_migrate(argparse.Namespace(**{**vars(args), "revision": "head"}))
        return cmd_seed(args)

    def cmd_demo(args: argparse.Namespace) -> int:
        from automations.cli.demo import fill_demo

        db = open_database(args)
        started = time.perf_counter()
        # A fresh database is prepared first, so `demo` works as a first command.
        migrate.upgrade(db, "head")
        with db.session() as session:
            seed_system_templates(session)
        summary = fill_demo(db, contacts=args.contacts, seed=args.seed, force=args.force)
        print(f"{summary} in {time.perf_counter() - started:.1f} s")
        return 0

    def cmd_makemigration(args: argparse.Namespace) -> int:
        migrate.make_revision(open_database(args), args.message)
        return 0

    p = subparsers.add_parser("migrate", help="create or upgrade the database schema")
    p.add_argument("--revision", default="head", help="target revision (default: head)")
    p.set_defaults(handler=cmd_migrate)

    p = subparsers.add_parser("seed-templates", help="load or update the six system templates")
    p.set_defaults(handler=cmd_seed)

    p = subparsers.add_parser("setup", help="migrate, then seed the system templates")
    p.set_defaults(handler=cmd_setup)

    p = subparsers.add_parser(
        "demo", help="prepare the database (migrate, system templates) and fill it with demo data"
    )
    p.add_argument("--contacts", type=int, default=200, help="number of contacts (default 200)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--force", action="store_true", help="add demo data even if the database has contacts")
    p.set_defaults(handler=cmd_demo)

    p = subparsers.add_parser("makemigration", help="autogenerate a migration from model changes")
    p.add_argument("message")
    p.set_defaults(handler=cmd_makemigration)
