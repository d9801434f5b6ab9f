"""Gift page settings per fund (default frequency, a line per amount, a monthly prompt) and
cookie-less embed view counts (one row per day and fund)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("funds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_frequency", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("amount_notes", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("monthly_prompt", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "embed_views",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("fund_id", sa.Integer(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["fund_id"], ["funds.id"], name=op.f("fk_embed_views_fund_id_funds")),
        sa.PrimaryKeyConstraint("day", "fund_id", name=op.f("pk_embed_views")),
    )


def downgrade():
    op.drop_table("embed_views")
    with op.batch_alter_table("funds", schema=None) as batch_op:
        batch_op.drop_column("monthly_prompt")
        batch_op.drop_column("amount_notes")
        batch_op.drop_column("default_frequency")
