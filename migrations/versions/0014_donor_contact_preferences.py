"""donors: communication preferences staff can record (fundraising email, postal mail)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("donors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_by_email", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("contact_by_mail", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade():
    with op.batch_alter_table("donors", schema=None) as batch_op:
        batch_op.drop_column("contact_by_mail")
        batch_op.drop_column("contact_by_email")
