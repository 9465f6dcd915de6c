"""Covering indexes for the calendar and statistics range queries

Counting a month of steps by message type and status (the calendar's busy
periods, the statistics page) reads only these indexes, never the step rows
with their bodies, which keeps those pages fast on a million steps.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_automation_steps_executed_at_message_type",
        "automation_steps",
        ["executed_at", "message_type", "status", "scheduled_at", "campaign_id"],
    )
    op.create_index(
        "ix_automation_steps_scheduled_at_executed_at",
        "automation_steps",
        ["scheduled_at", "executed_at", "message_type", "status", "campaign_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_automation_steps_scheduled_at_executed_at", table_name="automation_steps")
    op.drop_index("ix_automation_steps_executed_at_message_type", table_name="automation_steps")
