"""Indexes for the statistics page: campaigns by start, steps by campaign and position

The statistics count the campaigns started in a range by status (and template),
and the template funnel counts which steps of those campaigns ran. With these
two covering indexes neither reads a campaign or step row, which keeps the page
fast on a million steps.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_automation_campaigns_start_at_template_id_status",
        "automation_campaigns",
        ["start_at", "template_id", "status"],
    )
    op.create_index(
        "ix_automation_steps_campaign_id_position_status",
        "automation_steps",
        ["campaign_id", "position", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_automation_steps_campaign_id_position_status", table_name="automation_steps")
    op.drop_index("ix_automation_campaigns_start_at_template_id_status", table_name="automation_campaigns")
