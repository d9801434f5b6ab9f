"""Each scheduled job's run per period: the record staff and /healthz read, and the lease."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from donations.extensions import Base


class ScheduleRun(Base):
    """One run of a scheduled job for one period (a local day, hour or year). The unique
    (job, period) row is the lease: the worker whose INSERT wins runs the job; a run whose
    worker died (its lease ran out unfinished) is taken over by the next worker to look."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("job", "period"),
        Index("ix_schedule_runs_job_started", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(50))
    period: Mapped[str] = mapped_column(String(20))
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    lease_until: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    succeeded: Mapped[bool | None]
    summary: Mapped[str | None] = mapped_column(Text)  # what it did, or why it failed
    problems: Mapped[int | None]  # `ledger verify`: violations found
