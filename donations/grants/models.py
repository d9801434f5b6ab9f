"""Grant programs and the saved runs of their reports.

A program is configured once by staff; every export of one of its reports is saved as a
ReportRun with the program's settings at that moment, so that the numbers sent to a funder can
be re-derived and verified later (the file's SHA-256 is kept).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from donations.accounts.models import StaffUser
from donations.clock import utcnow
from donations.extensions import Base
from donations.grants.rules import RecurringRule
from donations.ledger.models import Fund, GiftSource

REPORT_KINDS = ("summary", "donors", "ledger", "reversals", "disclosure", "payouts")
# The kinds whose rows count gifts toward the program: a reversal recorded after one of these
# was saved is flagged "after export".
COUNTING_KINDS = ("summary", "donors", "ledger")
REPORT_FORMATS = ("csv", "xlsx")
ALL_SOURCES = tuple(source.value for source in GiftSource)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


@dataclass(frozen=True)
class ProgramSettings:
    """A program's settings, detached from the session: what a report is computed from.

    ReportRun keeps `snapshot()` of them; `from_snapshot` rebuilds them to re-run an export.
    """

    name: str
    slug: str
    first_day: date
    last_day: date
    cap_cents: int | None
    goal_cents: int | None
    fund_ids: tuple[int, ...] | None  # None: every fund
    sources: tuple[str, ...]
    individuals_only: bool
    recurring_rule: str
    notes: str
    public_fund_id: int | None

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_day"] = self.first_day.isoformat()
        data["last_day"] = self.last_day.isoformat()
        data["fund_ids"] = None if self.fund_ids is None else list(self.fund_ids)
        data["sources"] = list(self.sources)
        return data

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> ProgramSettings:
        return cls(
            name=data["name"],
            slug=data["slug"],
            first_day=date.fromisoformat(data["first_day"]),
            last_day=date.fromisoformat(data["last_day"]),
            cap_cents=data["cap_cents"],
            goal_cents=data["goal_cents"],
            fund_ids=None if data["fund_ids"] is None else tuple(data["fund_ids"]),
            sources=tuple(data["sources"]),
            individuals_only=data["individuals_only"],
            recurring_rule=data["recurring_rule"],
            notes=data.get("notes", ""),
            public_fund_id=data.get("public_fund_id"),
        )


class GrantProgram(Base):
    __tablename__ = "grant_programs"
    __table_args__ = (
        CheckConstraint("last_day >= first_day", name="window_order"),
        CheckConstraint("cap_cents IS NULL OR cap_cents > 0", name="cap_positive"),
        CheckConstraint("goal_cents IS NULL OR goal_cents > 0", name="goal_positive"),
        CheckConstraint(f"recurring_rule IN ({_in(tuple(RecurringRule))})", name="recurring_rule"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    # The window: local dates in NEWSROOM_TIMEZONE, both inclusive.
    first_day: Mapped[date]
    last_day: Mapped[date]
    cap_cents: Mapped[int | None] = mapped_column(BigInteger)  # per donor; None: no cap
    goal_cents: Mapped[int | None] = mapped_column(BigInteger)
    fund_ids: Mapped[list[int] | None] = mapped_column(JSON)  # None: every fund counts
    sources: Mapped[list[str]] = mapped_column(JSON)
    individuals_only: Mapped[bool] = mapped_column(default=True)
    recurring_rule: Mapped[str] = mapped_column(String(30), default=RecurringRule.INSTALLMENTS)
    notes: Mapped[str] = mapped_column(Text, default="")
    # The fund whose gift page shows this program's progress bar.
    public_fund_id: Mapped[int | None] = mapped_column(ForeignKey("funds.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    public_fund: Mapped[Fund | None] = relationship()
    runs: Mapped[list[ReportRun]] = relationship(back_populates="program", order_by="ReportRun.created_at.desc()")

    def settings(self) -> ProgramSettings:
        return ProgramSettings(
            name=self.name,
            slug=self.slug,
            first_day=self.first_day,
            last_day=self.last_day,
            cap_cents=self.cap_cents,
            goal_cents=self.goal_cents,
            fund_ids=None if self.fund_ids is None else tuple(sorted(self.fund_ids)),
            sources=tuple(self.sources),
            individuals_only=self.individuals_only,
            recurring_rule=self.recurring_rule,
            notes=self.notes or "",
            public_fund_id=self.public_fund_id,
        )


class ReportRun(Base):
    """One saved export: enough to say exactly what was sent, by whom, computed how."""

    __tablename__ = "report_runs"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(REPORT_KINDS)})", name="kind"),
        CheckConstraint(f"format IN ({_in(REPORT_FORMATS)})", name="format"),
        Index("ix_report_runs_program_created", "program_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("grant_programs.id"))
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    actor: Mapped[str] = mapped_column(String(320))  # staff email or "cli:<user>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))
    format: Mapped[str] = mapped_column(String(10))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    program_settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    totals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    row_count: Mapped[int]
    byte_size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))

    program: Mapped[GrantProgram] = relationship(back_populates="runs")
    staff_user: Mapped[StaffUser | None] = relationship()
