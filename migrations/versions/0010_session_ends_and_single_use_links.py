"""member_links: a link works once; sign-out ends a member's session on the server

member_links: one row per emailed link and the member session it opened.

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-30

"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "member_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["donor_id"], ["donors.id"], name=op.f("fk_member_links_donor_id_donors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_links")),
    )
    with op.batch_alter_table("member_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_links_donor_id"), ["donor_id"], unique=False)


def downgrade():
    with op.batch_alter_table("member_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_links_donor_id"))
    op.drop_table("member_links")
