"""stripe_events.next_attempt_at (the worker applies stored events) and schedule_runs (leases)

The webhook now only stores an event; the worker claims the due ones (next_attempt_at <= now,
oldest created first) with SELECT ... FOR UPDATE SKIP LOCKED. Events stored before this
revision and not applied yet become due at once. schedule_runs records each scheduled job's run
per period and is the lease that lets one worker of many run it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE stripe_events SET next_attempt_at = received_at WHERE applied_at IS NULL")
    op.create_index(
        "ix_stripe_events_due",
        "stripe_events",
        ["created_at", "id"],
        postgresql_where=sa.text("applied_at IS NULL"),
        sqlite_where=sa.text("applied_at IS NULL"),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=50), nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("problems", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
        sa.UniqueConstraint("job", "period", name=op.f("uq_schedule_runs_job")),
    )
    op.create_index("ix_schedule_runs_job_started", "schedule_runs", ["job", "started_at"])


def downgrade():
    op.drop_index("ix_schedule_runs_job_started", table_name="schedule_runs")
    op.drop_table("schedule_runs")
    op.drop_index("ix_stripe_events_due", table_name="stripe_events")
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_column("next_attempt_at")
