"""Index on campaigns' creation time

The campaign list (dashboard and REST API) shows the newest campaigns first when
no status is chosen; this index lets a page of them be read without sorting
every campaign.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_automation_campaigns_created_at", "automation_campaigns", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_automation_campaigns_created_at", table_name="automation_campaigns")
