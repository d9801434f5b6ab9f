"""membership_changes keep the interval and fund before and after; memberships.paused_until

A member may now change the frequency and the fund as well as the amount: each change row says
what the membership was before and after, so the history stays exact (a monthly $10 that became
an annual $120 is not a twelvefold increase). Rows written before this revision only changed the
amount, at the membership's one interval and fund: they are filled in with those. A membership
may also skip installments: paused_until is when billing resumes (Stripe's
pause_collection.resumes_at).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("membership_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("old_interval", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("new_interval", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("old_fund_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("new_fund_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_membership_changes_old_fund_id_funds", "funds", ["old_fund_id"], ["id"])
        batch_op.create_foreign_key("fk_membership_changes_new_fund_id_funds", "funds", ["new_fund_id"], ["id"])
    op.execute(
        "UPDATE membership_changes SET"
        " old_interval = (SELECT interval FROM memberships WHERE memberships.id = membership_changes.membership_id),"
        " new_interval = (SELECT interval FROM memberships WHERE memberships.id = membership_changes.membership_id),"
        " old_fund_id = (SELECT fund_id FROM memberships WHERE memberships.id = membership_changes.membership_id),"
        " new_fund_id = (SELECT fund_id FROM memberships WHERE memberships.id = membership_changes.membership_id)"
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_until", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("paused_until")
    with op.batch_alter_table("membership_changes", schema=None) as batch_op:
        batch_op.drop_constraint("fk_membership_changes_new_fund_id_funds", type_="foreignkey")
        batch_op.drop_constraint("fk_membership_changes_old_fund_id_funds", type_="foreignkey")
        batch_op.drop_column("new_fund_id")
        batch_op.drop_column("old_fund_id")
        batch_op.drop_column("new_interval")
        batch_op.drop_column("old_interval")
