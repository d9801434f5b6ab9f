"""blocked_attempts: card-testing defences' count of refused attempts, per reason and minute

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

"""
from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "blocked_attempts",
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("reason", "minute", name=op.f("pk_blocked_attempts")),
    )
    with op.batch_alter_table("blocked_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blocked_attempts_minute"), ["minute"], unique=False)


def downgrade():
    with op.batch_alter_table("blocked_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocked_attempts_minute"))
    op.drop_table("blocked_attempts")
