"""staff sign-in security (throttling, two-factor, one-time passwords, session versions)

Also indexes donors.merged_into_id, to list the duplicates merged into a donor.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("failed_signins", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))

    with op.batch_alter_table("donors", schema=None) as batch_op:
        batch_op.create_index("ix_donors_merged_into_id", ["merged_into_id"], unique=False)


def downgrade():
    with op.batch_alter_table("donors", schema=None) as batch_op:
        batch_op.drop_index("ix_donors_merged_into_id")

    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("session_version")
        batch_op.drop_column("must_change_password")
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_signins")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_confirmed_at")
