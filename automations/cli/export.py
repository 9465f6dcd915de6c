"""`python -m automations export KIND --out FILE [--start --end --status ...]`.

Writes the same bytes as the dashboard's download button for the same filters.
`--start`/`--end` take a date (a local day in AUTOMATIONS_TIMEZONE) or an ISO 8601
time (without an offset: local time); the end is excluded, so
`--start 2026-03-01 --end 2026-04-01` is March.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time, tzinfo
from typing import Any

from automations.domain.config import get_settings
from automations.domain.errors import ValidationError
from automations.domain.timeutil import as_utc
from automations.reports.exports import EXPORT_KINDS, ExportFilter, write_csv


def parse_when(text: str | None, tz: tzinfo, field: str) -> datetime | None:
    """A date (local midnight) or an ISO 8601 time (naive = local) as UTC."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            return as_utc(datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz))
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError.single(field, f"not a date or ISO 8601 time: {text!r}") from None
    return as_utc(value if value.tzinfo else value.replace(tzinfo=tz))


def export_filter_from_args(args: argparse.Namespace, tz: tzinfo) -> ExportFilter:
    return ExportFilter(
        start=parse_when(args.start, tz, "start"),
        end=parse_when(args.end, tz, "end"),
        status=args.status or None,
        message_type=args.message_type or None,
        campaign_id=args.campaign_id,
        template_id=args.template_id,
        contact_id=args.contact_id,
    )


def register(subparsers: Any) -> None:
    from automations.cli.main import open_database

    def cmd_export(args: argparse.Namespace) -> int:
        tz = get_settings().tz
        filters = export_filter_from_args(args, tz)
        db = open_database(args)
        try:
            with db.read_session() as session:
                if args.out == "-":
                    size = write_csv(session, args.kind, sys.stdout.buffer, filters, tz=tz)
                    sys.stdout.buffer.flush()
                else:
                    with open(args.out, "wb") as out:
                        size = write_csv(session, args.kind, out, filters, tz=tz)
        finally:
            db.dispose()
        if args.out != "-":
            print(f"wrote {args.kind} export to {args.out} ({size} bytes)", file=sys.stderr)
        return 0

    p = subparsers.add_parser("export", help="write a CSV export (the same file as the dashboard's download button)")
    p.add_argument("kind", choices=EXPORT_KINDS, help="what to export")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write ('-' for stdout)")
    p.add_argument("--start", help="from this date or time (local; included)")
    p.add_argument("--end", help="until this date or time (local; excluded)")
    p.add_argument("--status", help="only this status (campaigns, steps, calendar, follow-ups)")
    p.add_argument(
        "--message-type", choices=("email", "sms", "task", "webhook"), help="only steps of this message type"
    )
    p.add_argument("--campaign-id", type=int, help="only this campaign")
    p.add_argument("--template-id", type=int, help="only campaigns from this template")
    p.add_argument("--contact-id", type=int, help="only this contact")
    p.set_defaults(handler=cmd_export)
