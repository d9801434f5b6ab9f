"""Local-match pledges (with their documents), funder packets and funder links

grant_pledges: a program's local-match funders, each with the document proving the pledge (the
bytes kept in the database). report_runs may now be a funder packet (kind 'packet', format
'zip'), whose files are kept in grant_packets. funder_links: read-only links to one packet,
stored as the SHA-256 of their token, with an expiry and a revocation time.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

KINDS_BEFORE = "kind IN ('summary', 'donors', 'ledger', 'reversals', 'disclosure', 'payouts')"
KINDS_AFTER = "kind IN ('summary', 'donors', 'ledger', 'reversals', 'disclosure', 'payouts', 'packet')"
FORMATS_BEFORE = "format IN ('csv', 'xlsx')"
FORMATS_AFTER = "format IN ('csv', 'xlsx', 'zip')"


def _run_checks(kinds: str, formats: str) -> None:
    with op.batch_alter_table("report_runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_report_runs_kind"), type_="check")
        batch_op.drop_constraint(op.f("ck_report_runs_format"), type_="check")
        batch_op.create_check_constraint(op.f("ck_report_runs_kind"), sa.text(kinds))
        batch_op.create_check_constraint(op.f("ck_report_runs_format"), sa.text(formats))


def upgrade():
    _run_checks(KINDS_AFTER, FORMATS_AFTER)
    op.create_table(
        "grant_pledges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("funder_name", sa.String(length=200), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("pledged_on", sa.Date(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("document_name", sa.String(length=255), nullable=False),
        sa.Column("document_type", sa.String(length=50), nullable=False),
        sa.Column("document_size", sa.Integer(), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_grant_pledges_amount_positive")),
        sa.CheckConstraint("document_size > 0", name=op.f("ck_grant_pledges_document_size_positive")),
        sa.CheckConstraint(
            "document_type IN ('application/pdf', 'image/png', 'image/jpeg')",
            name=op.f("ck_grant_pledges_document_type"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["grant_programs.id"], name=op.f("fk_grant_pledges_program_id_grant_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_pledges")),
    )
    op.create_index(op.f("ix_grant_pledges_program_id"), "grant_pledges", ["program_id"])
    op.create_table(
        "grant_packets",
        sa.Column("report_run_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_run_id"], ["report_runs.id"], name=op.f("fk_grant_packets_report_run_id_report_runs")
        ),
        sa.PrimaryKeyConstraint("report_run_id", name=op.f("pk_grant_packets")),
    )
    op.create_table(
        "funder_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_run_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_run_id"], ["report_runs.id"], name=op.f("fk_funder_links_report_run_id_report_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funder_links")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_funder_links_token_sha256")),
    )
    op.create_index(op.f("ix_funder_links_report_run_id"), "funder_links", ["report_run_id"])


def downgrade():
    op.drop_index(op.f("ix_funder_links_report_run_id"), table_name="funder_links")
    op.drop_table("funder_links")
    op.drop_table("grant_packets")
    op.drop_index(op.f("ix_grant_pledges_program_id"), table_name="grant_pledges")
    op.drop_table("grant_pledges")
    op.execute("DELETE FROM report_runs WHERE kind = 'packet'")
    _run_checks(KINDS_BEFORE, FORMATS_BEFORE)
