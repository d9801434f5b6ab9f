"""staff refund requests and the balance transactions of each payout

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('refund_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gift_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_by', sa.String(length=320), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
    sa.Column('refused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_refund_requests_amount_positive')),
    sa.ForeignKeyConstraint(['gift_id'], ['gifts.id'], name=op.f('fk_refund_requests_gift_id_gifts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_refund_requests_idempotency_key')),
    sa.UniqueConstraint('stripe_refund_id', name=op.f('uq_refund_requests_stripe_refund_id'))
    )
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_requests_gift_id'), ['gift_id'], unique=False)

    op.create_table('payout_transactions',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('payout_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=50), nullable=False),
    sa.Column('reporting_category', sa.String(length=50), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('net_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('gift_id', sa.Integer(), nullable=True),
    sa.Column('reversal_id', sa.Integer(), nullable=True),
    sa.Column('dispute_id', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['payout_id'], ['payouts.id'], name=op.f('fk_payout_transactions_payout_id_payouts')),
    sa.ForeignKeyConstraint(['gift_id'], ['gifts.id'], name=op.f('fk_payout_transactions_gift_id_gifts')),
    sa.ForeignKeyConstraint(['reversal_id'], ['reversals.id'], name=op.f('fk_payout_transactions_reversal_id_reversals')),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_payout_transactions_dispute_id_disputes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_transactions'))
    )
    with op.batch_alter_table('payout_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_transactions_payout_id'), ['payout_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payout_transactions_gift_id'), ['gift_id'], unique=False)


def downgrade():
    with op.batch_alter_table('payout_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payout_transactions_gift_id'))
        batch_op.drop_index(batch_op.f('ix_payout_transactions_payout_id'))

    op.drop_table('payout_transactions')
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_requests_gift_id'))

    op.drop_table('refund_requests')
