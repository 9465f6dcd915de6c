"""`python -m automations import contacts FILE [--encoding E] [--delimiter D] [--dry-run]`.

The same import as the dashboard's Import CSV tab and `POST /api/contacts/import`:
prints what it read (encoding, delimiter), how many rows it created and every
rejected row with its line and problems. Exits 0 when the file was read (even
with rejected rows), 2 when it cannot be read at all.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from automations.domain import migrate
from automations.services.contact_import import import_contacts


def register(subparsers: Any) -> None:
    from automations.cli.main import open_database

    p = subparsers.add_parser("import", help="import data from a file (contacts from a CSV file)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    c = kinds.add_parser("contacts", help="contacts from a CSV file with a header row (first_name required)")
    c.add_argument("file", help="the CSV file ('-' for standard input)")
    c.add_argument("--encoding", default=None, help="the file's encoding (default: detected)")
    c.add_argument("--delimiter", default=None, help="the delimiter: , ; tab | (default: detected)")
    c.add_argument("--dry-run", action="store_true", help="check every row, import nothing")

    def cmd_import_contacts(args: argparse.Namespace) -> int:
        db = open_database(args)
        migrate.upgrade(db)  # a new database file is prepared, as `setup` would
        try:
            if args.file == "-":
                result = import_contacts(db.session, sys.stdin.buffer, encoding=args.encoding,
                                         delimiter=args.delimiter, dry_run=args.dry_run)  # fmt: skip
            else:
                try:
                    stream = open(args.file, "rb")  # noqa: SIM115 (closed below, after a streamed import)
                except OSError as exc:
                    print(f"error: file: cannot open {args.file}: {exc.strerror}", file=sys.stderr)
                    return 2
                with stream:
                    result = import_contacts(db.session, stream, encoding=args.encoding,
                                             delimiter=args.delimiter, dry_run=args.dry_run)  # fmt: skip
        finally:
            db.dispose()
        verb = "would be created" if args.dry_run else "created"
        print(
            f"read {result.rows:,} rows as {result.format.encoding}, {result.format.delimiter_name}-separated: "
            f"{result.created:,} contacts {verb}, {len(result.rejected):,} rejected"
        )
        for row in result.rejected:
            print(f"line {row.line}: " + "; ".join(f"{k}: {v}" for k, v in row.errors.items()))
        return 0

    c.set_defaults(handler=cmd_import_contacts)
