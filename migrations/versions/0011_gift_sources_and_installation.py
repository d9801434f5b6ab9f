"""gift sources, not-a-gift events, claimed subscriptions, the installation id, import cursors, imported gifts

A shared Stripe account: payments the app did not create are gifts only through a gift source;
everything else is kept apart in not_gifts. The installation id tags the app's Stripe objects.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "installation",
        sa.Column("key", sa.String(length=20), nullable=False),
        sa.Column("installation_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_installation")),
    )
    op.create_table(
        "gift_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("fund_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.CheckConstraint(
            "kind IN ('payment_link', 'product', 'price', 'metadata')", name=op.f("ck_gift_sources_kind_known")
        ),
        sa.ForeignKeyConstraint(["fund_id"], ["funds.id"], name=op.f("fk_gift_sources_fund_id_funds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_sources")),
        sa.UniqueConstraint("value", name=op.f("uq_gift_sources_value")),
    )
    op.create_table(
        "not_gifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("charge_id", sa.String(length=255), nullable=True),
        sa.Column("subscription_id", sa.String(length=255), nullable=True),
        sa.Column("invoice_id", sa.String(length=255), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_not_gifts")),
        sa.UniqueConstraint("event_id", name=op.f("uq_not_gifts_event_id")),
    )
    for column in ("object_id", "kind", "payment_intent_id", "charge_id", "subscription_id", "invoice_id"):
        op.create_index(op.f(f"ix_not_gifts_{column}"), "not_gifts", [column], unique=False)
    op.create_table(
        "claimed_subscriptions",
        sa.Column("subscription_id", sa.String(length=255), nullable=False),
        sa.Column("fund_slug", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_claimed_subscriptions")),
    )

    op.create_table(
        "import_cursors",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=True),
        sa.Column("last_id", sa.String(length=255), nullable=True),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_import_cursors")),
    )

    op.create_table(
        "imported_gifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_system", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["gift_id"], ["gifts.id"], name=op.f("fk_imported_gifts_gift_id_gifts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_gifts")),
        sa.UniqueConstraint("source_system", "external_id", name=op.f("uq_imported_gifts_source_system")),
    )
    op.create_index(op.f("ix_imported_gifts_gift_id"), "imported_gifts", ["gift_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_imported_gifts_gift_id"), table_name="imported_gifts")
    op.drop_table("imported_gifts")
    op.drop_table("import_cursors")
    op.drop_table("claimed_subscriptions")
    for column in ("object_id", "kind", "payment_intent_id", "charge_id", "subscription_id", "invoice_id"):
        op.drop_index(op.f(f"ix_not_gifts_{column}"), table_name="not_gifts")
    op.drop_table("not_gifts")
    op.drop_table("gift_sources")
    op.drop_table("installation")
