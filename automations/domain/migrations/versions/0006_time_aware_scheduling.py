"""Time-aware scheduling: schedule settings on templates and campaigns, business
days and send_at on steps, the reason a step moved, and the deliveries the
frequency caps count (filled from the steps already sent)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from automations.domain.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("template_steps", "automation_steps"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("business_days", sa.Boolean(), server_default=sa.text("false"), nullable=False))
            batch.add_column(sa.Column("send_at", sa.String(length=5), nullable=True))
    with op.batch_alter_table("automation_steps") as batch:
        batch.add_column(sa.Column("schedule_note", sa.Text(), nullable=True))
    for table in ("automation_templates", "automation_campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("schedule", sa.JSON(), nullable=True))
    op.create_index(
        "ix_automation_steps_scheduled_at_noted",
        "automation_steps",
        ["scheduled_at", "message_type", "status", "campaign_id", "schedule_note"],
        unique=False,
        sqlite_where=sa.text("schedule_note IS NOT NULL"),
        postgresql_where=sa.text("schedule_note IS NOT NULL"),
    )
    op.create_table(
        "contact_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_contact_deliveries_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["automation_steps.id"],
            name=op.f("fk_contact_deliveries_step_id_automation_steps"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_deliveries")),
        sa.UniqueConstraint("step_id", name=op.f("uq_contact_deliveries_step_id")),
    )
    op.create_index(
        op.f("ix_contact_deliveries_contact_id_channel_sent_at"),
        "contact_deliveries",
        ["contact_id", "channel", "sent_at"],
        unique=False,
    )
    op.execute(
        "INSERT INTO contact_deliveries (contact_id, channel, sent_at, step_id) "
        "SELECT c.contact_id, s.message_type, s.executed_at, s.id "
        "FROM automation_steps s JOIN automation_campaigns c ON c.id = s.campaign_id "
        "WHERE s.status = 'sent' AND s.message_type IN ('email', 'sms') AND s.executed_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_contact_deliveries_contact_id_channel_sent_at"), table_name="contact_deliveries")
    op.drop_table("contact_deliveries")
    op.drop_index("ix_automation_steps_scheduled_at_noted", table_name="automation_steps")
    for table in ("automation_templates", "automation_campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("schedule")
    with op.batch_alter_table("automation_steps") as batch:
        batch.drop_column("schedule_note")
    for table in ("template_steps", "automation_steps"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("send_at")
            batch.drop_column("business_days")
