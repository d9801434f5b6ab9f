"""gifts: an `expired` status for abandoned checkouts, listed by when they started;
organizations back on their gifts only

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

"""
from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_STATUSES = "'pending', 'paid', 'failed', 'refunded', 'partially_refunded', 'disputed'"
NEW_STATUSES = OLD_STATUSES + ", 'expired'"


def _status_check(statuses):
    with op.batch_alter_table("gifts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_gifts_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_gifts_status"), sa.text(f"status IN ({statuses})"))


def upgrade():
    _status_check(NEW_STATUSES)
    op.create_index("ix_gifts_status_created_at", "gifts", ["status", "created_at", "id"], unique=False)
    # The ledger used to copy the organization a gift was given for onto its donor (and so onto
    # the donor's personal statements); it belongs to that gift only, where it is still kept.
    op.execute(
        "UPDATE donors SET organization = NULL WHERE organization IS NOT NULL AND EXISTS "
        "(SELECT 1 FROM gifts WHERE gifts.donor_id = donors.id AND gifts.organization = donors.organization)"
    )


def downgrade():
    op.drop_index("ix_gifts_status_created_at", table_name="gifts")
    op.execute("UPDATE gifts SET status = 'failed' WHERE status = 'expired'")
    _status_check(OLD_STATUSES)
