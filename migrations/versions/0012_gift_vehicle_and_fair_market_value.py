"""gifts: the vehicle a gift came through (personal, donor-advised fund, family foundation,
business, foundation, government) and the fair market value of what the donor got back;
grant programs: the published programs' rules as settings

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

VEHICLES = "'personal', 'donor_advised_fund', 'family_foundation', 'business', 'foundation', 'government'"


def upgrade():
    with op.batch_alter_table("gifts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vehicle", sa.String(length=20), nullable=False, server_default="personal"))
        batch_op.add_column(sa.Column("fair_market_value_cents", sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint(batch_op.f("ck_gifts_vehicle"), sa.text(f"vehicle IN ({VEHICLES})"))
        batch_op.create_check_constraint(
            batch_op.f("ck_gifts_fair_market_value"),
            sa.text(
                "fair_market_value_cents IS NULL OR "
                "(fair_market_value_cents >= 0 AND fair_market_value_cents <= amount_cents)"
            ),
        )
    # A gift given for an organization was a business's gift until now: keep it so.
    op.execute("UPDATE gifts SET vehicle = 'business' WHERE organization IS NOT NULL AND organization != ''")
    with op.batch_alter_table("grant_programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rules", sa.JSON(), nullable=False, server_default="{}"))


def downgrade():
    with op.batch_alter_table("grant_programs", schema=None) as batch_op:
        batch_op.drop_column("rules")
    with op.batch_alter_table("gifts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_gifts_fair_market_value"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_gifts_vehicle"), type_="check")
        batch_op.drop_column("fair_market_value_cents")
        batch_op.drop_column("vehicle")
