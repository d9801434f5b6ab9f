"""membership state times: which event last set the amount and the status

Events arrive in any order; a membership's amount and status take the values of the latest
event that spoke of them, so each remembers the Stripe time of that event.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_as_of', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('status_as_of', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_column('status_as_of')
        batch_op.drop_column('amount_as_of')
