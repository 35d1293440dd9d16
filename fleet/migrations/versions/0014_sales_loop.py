"""sales loop: customer segment and language, offer policy log columns, CRM outcomes, alert subscriptions

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 13:20:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("segment", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("catalog_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("list_price", sa.Float(), nullable=True))
        batch.add_column(sa.Column("price_level", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("policy", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("propensity", sa.Float(), nullable=True))
        batch.add_column(sa.Column("context", _JSON, nullable=True))
        batch.add_column(sa.Column("alternatives", _JSON, nullable=True))
        batch.add_column(sa.Column("expires_at", _TS, nullable=True))
        batch.add_column(sa.Column("outcome_reason", sa.Text(), nullable=True))
    op.create_table(
        "crm_outcomes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", _ID, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_crm_outcomes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_crm_outcomes_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_outcomes")),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_crm_outcomes_webhook_id")),
    )
    op.create_index("ix_crm_outcomes_customer_id", "crm_outcomes", ["customer_id"], unique=False)
    op.create_table(
        "notification_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("min_severity", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_notification_subscriptions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_notification_subscriptions_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_subscriptions")),
    )
    op.create_index(
        "ix_notification_subscriptions_user_id", "notification_subscriptions", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_notification_subscriptions_user_id", table_name="notification_subscriptions")
    op.drop_table("notification_subscriptions")
    op.drop_index("ix_crm_outcomes_customer_id", table_name="crm_outcomes")
    op.drop_table("crm_outcomes")
    # Plain DROP COLUMN (SQLite >= 3.35), not a batch rebuild: rebuilding customers or offers drops the old
    # table, and with foreign keys on that cascades to every machine's labels, alerts and offers.
    for name in (
        "outcome_reason",
        "expires_at",
        "alternatives",
        "context",
        "propensity",
        "policy",
        "price_level",
        "list_price",
        "catalog_version",
        "language",
    ):
        op.drop_column("offers", name)
    op.drop_column("customers", "language")
    op.drop_column("customers", "segment")
