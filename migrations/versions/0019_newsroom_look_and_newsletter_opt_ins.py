"""The newsroom's look (name, logo, accent colour, footer) and the gift page's newsletter
opt-in: offered per newsroom or fund with its wording, each opt-in kept with its time and words

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "newsroom_look",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("accent", sa.String(length=7), nullable=False),
        sa.Column("footer", sa.String(length=200), nullable=False),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_type", sa.String(length=20), nullable=False),
        sa.Column("logo_width", sa.Integer(), nullable=True),
        sa.Column("logo_height", sa.Integer(), nullable=True),
        sa.Column("newsletter_offered", sa.Boolean(), nullable=False),
        sa.Column("newsletter_wording", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsroom_look")),
    )
    op.create_table(
        "newsletter_opt_ins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("wording", sa.Text(), nullable=False),
        sa.Column("opted_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["gift_id"], ["gifts.id"], name=op.f("fk_newsletter_opt_ins_gift_id_gifts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsletter_opt_ins")),
        sa.UniqueConstraint("gift_id", name=op.f("uq_newsletter_opt_ins_gift_id")),
    )
    with op.batch_alter_table("funds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("newsletter_offer", sa.String(length=3), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("newsletter_wording", sa.Text(), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("funds", schema=None) as batch_op:
        batch_op.drop_column("newsletter_wording")
        batch_op.drop_column("newsletter_offer")
    op.drop_table("newsletter_opt_ins")
    op.drop_table("newsroom_look")
