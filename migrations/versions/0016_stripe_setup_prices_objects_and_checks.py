"""Stripe set-up: the prices `setup-stripe` made per fund, frequency and amount (checkouts name
them), the portal configuration and webhook endpoint it made, and `check-stripe`'s runs

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stripe_prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fund_id", sa.Integer(), nullable=False),
        sa.Column("frequency", sa.String(length=20), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_id", sa.String(length=255), nullable=False),
        sa.Column("product_id", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["fund_id"], ["funds.id"], name=op.f("fk_stripe_prices_fund_id_funds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_prices")),
        sa.UniqueConstraint(
            "fund_id",
            "frequency",
            "amount_cents",
            "currency",
            name=op.f("uq_stripe_prices_fund_id"),
        ),
    )
    op.create_table(
        "stripe_setup_objects",
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_stripe_setup_objects")),
    )
    op.create_table(
        "stripe_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_checks")),
    )
    op.create_index(op.f("ix_stripe_checks_checked_at"), "stripe_checks", ["checked_at"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_stripe_checks_checked_at"), table_name="stripe_checks")
    op.drop_table("stripe_checks")
    op.drop_table("stripe_setup_objects")
    op.drop_table("stripe_prices")
