"""local_cards: the local gateway's card on file leaves memberships for a table of its own

memberships.local_card_last4 was the local gateway's state in the production schema. Each
value moves to local_cards (one row per membership that has one), and the column is dropped.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "local_cards",
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"], ["memberships.id"], name=op.f("fk_local_cards_membership_id_memberships")
        ),
        sa.PrimaryKeyConstraint("membership_id", name=op.f("pk_local_cards")),
    )
    op.execute(
        "INSERT INTO local_cards (membership_id, last4)"
        " SELECT id, local_card_last4 FROM memberships WHERE local_card_last4 IS NOT NULL"
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("local_card_last4")


def downgrade():
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("local_card_last4", sa.String(length=4), nullable=True))
    op.execute(
        "UPDATE memberships SET local_card_last4 ="
        " (SELECT last4 FROM local_cards WHERE local_cards.membership_id = memberships.id)"
    )
    op.drop_table("local_cards")
