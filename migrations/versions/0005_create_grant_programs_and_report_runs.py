"""create grant_programs and report_runs tables

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('grant_programs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('cap_cents', sa.BigInteger(), nullable=True),
    sa.Column('goal_cents', sa.BigInteger(), nullable=True),
    sa.Column('fund_ids', sa.JSON(), nullable=True),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('individuals_only', sa.Boolean(), nullable=False),
    sa.Column('recurring_rule', sa.String(length=30), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('public_fund_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('last_day >= first_day', name=op.f('ck_grant_programs_window_order')),
    sa.CheckConstraint('cap_cents IS NULL OR cap_cents > 0', name=op.f('ck_grant_programs_cap_positive')),
    sa.CheckConstraint('goal_cents IS NULL OR goal_cents > 0', name=op.f('ck_grant_programs_goal_positive')),
    sa.CheckConstraint("recurring_rule IN ('installments', 'new_recurring_x12')", name=op.f('ck_grant_programs_recurring_rule')),
    sa.ForeignKeyConstraint(['public_fund_id'], ['funds.id'], name=op.f('fk_grant_programs_public_fund_id_funds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_programs')),
    sa.UniqueConstraint('slug', name=op.f('uq_grant_programs_slug'))
    )
    with op.batch_alter_table('grant_programs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_programs_public_fund_id'), ['public_fund_id'], unique=False)

    op.create_table('report_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('format', sa.String(length=10), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('program_settings', sa.JSON(), nullable=False),
    sa.Column('totals', sa.JSON(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('byte_size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.CheckConstraint("kind IN ('summary', 'donors', 'ledger', 'reversals', 'disclosure', 'payouts')", name=op.f('ck_report_runs_kind')),
    sa.CheckConstraint("format IN ('csv', 'xlsx')", name=op.f('ck_report_runs_format')),
    sa.ForeignKeyConstraint(['program_id'], ['grant_programs.id'], name=op.f('fk_report_runs_program_id_grant_programs')),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_report_runs_staff_user_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_runs'))
    )
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.create_index('ix_report_runs_program_created', ['program_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_report_runs_program_created')
    op.drop_table('report_runs')
    with op.batch_alter_table('grant_programs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_programs_public_fund_id'))
    op.drop_table('grant_programs')
