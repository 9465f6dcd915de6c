"""Engagement: what recipients do with the messages (opens, clicks, replies,
auto-replies, bounces, unsubscribes), the inbound messages processed once, a
bouncing flag on contacts, and stop-on-reply and tracking switches on templates
and campaigns

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from automations.domain.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engagement_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("link_index", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("machine", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["automation_campaigns.id"],
            name=op.f("fk_engagement_events_campaign_id_automation_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_engagement_events_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["automation_steps.id"],
            name=op.f("fk_engagement_events_step_id_automation_steps"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_events")),
    )
    with op.batch_alter_table("engagement_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_engagement_events_contact_id_occurred_at"), ["contact_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_engagement_events_occurred_at_kind"), ["occurred_at", "kind"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_engagement_events_step_id_kind"), ["step_id", "kind"], unique=False)

    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("mailbox", sa.String(length=300), nullable=True),
        sa.Column("uid", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("classification", sa.String(length=16), nullable=True),
        sa.Column("step_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["automation_campaigns.id"],
            name=op.f("fk_inbound_messages_campaign_id_automation_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["automation_steps.id"],
            name=op.f("fk_inbound_messages_step_id_automation_steps"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_inbound_messages_fingerprint")),
        sa.UniqueConstraint("mailbox", "uid", name=op.f("uq_inbound_messages_mailbox_uid")),
    )
    with op.batch_alter_table("automation_campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stop_on_reply", sa.Boolean(), server_default=sa.text("true"), nullable=False))
        batch_op.add_column(sa.Column("tracking", sa.Boolean(), server_default=sa.text("true"), nullable=False))

    with op.batch_alter_table("automation_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opened_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("clicked_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("replied_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("bounced_at", UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table("automation_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stop_on_reply", sa.Boolean(), server_default=sa.text("true"), nullable=False))
        batch_op.add_column(sa.Column("tracking", sa.Boolean(), server_default=sa.text("true"), nullable=False))

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_bouncing", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(sa.Column("email_bounced_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("email_bounced_at")
        batch_op.drop_column("email_bouncing")

    with op.batch_alter_table("automation_templates", schema=None) as batch_op:
        batch_op.drop_column("tracking")
        batch_op.drop_column("stop_on_reply")

    with op.batch_alter_table("automation_steps", schema=None) as batch_op:
        batch_op.drop_column("bounced_at")
        batch_op.drop_column("replied_at")
        batch_op.drop_column("clicked_at")
        batch_op.drop_column("opened_at")

    with op.batch_alter_table("automation_campaigns", schema=None) as batch_op:
        batch_op.drop_column("tracking")
        batch_op.drop_column("stop_on_reply")

    op.drop_table("inbound_messages")
    with op.batch_alter_table("engagement_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_engagement_events_step_id_kind"))
        batch_op.drop_index(batch_op.f("ix_engagement_events_occurred_at_kind"))
        batch_op.drop_index(batch_op.f("ix_engagement_events_contact_id_occurred_at"))

    op.drop_table("engagement_events")
