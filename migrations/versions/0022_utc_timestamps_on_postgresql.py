"""PostgreSQL: every timestamp column with its time zone, as the models declare them

Migrations 0010-0020 added fifteen columns as `timestamp without time zone` while the models say
timezone-aware UTC (`UTCDateTime`). PostgreSQL then stored the app's UTC instants as wall-clock
time in the session's time zone, and read them back without it: right only on a server whose
time zone is UTC. The values are converted as PostgreSQL wrote them (in the session's time zone,
which is the server's, as it was when the app wrote them). SQLite keeps text, unchanged.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07

"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

COLUMNS = {
    "installation": ("created_at",),
    "gift_sources": ("created_at",),
    "not_gifts": ("seen_at",),
    "claimed_subscriptions": ("created_at",),
    "import_cursors": ("since", "finished_at", "updated_at"),
    "imported_gifts": ("imported_at",),
    "stripe_events": ("next_attempt_at",),
    "schedule_runs": ("started_at", "lease_until", "finished_at"),
    "stripe_setup_objects": ("updated_at",),
    "stripe_checks": ("checked_at",),
    "memberships": ("paused_until",),
}


def _alter(to_type: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} TYPE {to_type} USING {column}::{to_type}" for column in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _alter("timestamp with time zone")


def downgrade() -> None:
    _alter("timestamp without time zone")
