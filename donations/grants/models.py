"""Grant programs and the saved runs of their reports.

A program is configured once by staff; every export of one of its reports is saved as a
ReportRun with the program's settings at that moment, so that the numbers sent to a funder can
be re-derived and verified later (the file's SHA-256 is kept).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from donations.accounts.models import StaffUser
from donations.clock import utcnow
from donations.extensions import Base
from donations.grants.rules import RecurringRule
from donations.ledger.models import Fund, GiftSource

REPORT_KINDS = ("summary", "donors", "ledger", "reversals", "disclosure", "payouts")
# A funder packet (grants/packet.py) is saved as a run too: a ZIP of several reports.
PACKET = "packet"
RUN_KINDS = (*REPORT_KINDS, PACKET)
# The kinds whose rows count gifts toward the program: a reversal recorded after one of these
# was saved is flagged "after export".
COUNTING_KINDS = ("summary", "donors", "ledger", PACKET)
REPORT_FORMATS = ("csv", "xlsx")
RUN_FORMATS = (*REPORT_FORMATS, "zip")
ALL_SOURCES = tuple(source.value for source in GiftSource)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


@dataclass(frozen=True)
class ProgramSettings:
    """A grant program's settings, detached from the session: what staff and the CLI ask for,
    what is written to a `GrantProgram` (`apply_to`), what a report is computed from
    (`from_program`), and what a ReportRun keeps (`snapshot`, rebuilt by `from_snapshot`)."""

    name: str
    slug: str
    first_day: date  # the window: local dates in NEWSROOM_TIMEZONE, both inclusive
    last_day: date
    cap_cents: int | None = None  # per donor; None: no cap
    goal_cents: int | None = None
    fund_ids: tuple[int, ...] | None = None  # None: every fund
    sources: tuple[str, ...] = ALL_SOURCES
    individuals_only: bool = True
    recurring_rule: str = RecurringRule.INSTALLMENTS
    notes: str = ""
    public_fund_id: int | None = None
    # The published programs' rules (kept together in the program's `rules` JSON column).
    anonymous_limit_cents: int | None = None  # anonymous gifts above it are not matched
    program_cap_cents: int | None = None  # the most the program matches in all
    deduct_fair_market_value: bool = True
    exclusive_with: tuple[str, ...] = ()  # slugs: a gift counts in one of them only, by priority
    priority: int = 100  # lower first
    local_postal_prefixes: tuple[str, ...] = ()
    local_states: tuple[str, ...] = ()

    @classmethod
    def from_program(cls, program: GrantProgram) -> ProgramSettings:
        stored = program.rules or {}
        settings = cls(
            **{f.name: getattr(program, f.name) for f in fields(cls) if f.name not in RULE_FIELDS},
            **{name: _tupled(name, stored[name]) for name in RULE_FIELDS if name in stored},
        )
        # The model's JSON columns hold lists.
        return replace(
            settings,
            fund_ids=None if program.fund_ids is None else tuple(sorted(program.fund_ids)),
            sources=tuple(program.sources),
            notes=program.notes or "",
        )

    def apply_to(self, program: GrantProgram) -> None:
        """Write these settings to `program` (validated first: see grants.service), in one
        spelling: name and notes trimmed, funds sorted, sources in their usual order."""
        for f in fields(self):
            if f.name not in RULE_FIELDS:
                setattr(program, f.name, getattr(self, f.name))
        program.rules = {name: _listed(getattr(self, name)) for name in RULE_FIELDS}
        program.name = self.name.strip()
        program.fund_ids = None if self.fund_ids is None else sorted(set(self.fund_ids))
        program.sources = [source for source in ALL_SOURCES if source in self.sources]
        program.notes = self.notes.strip()

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_day"] = self.first_day.isoformat()
        data["last_day"] = self.last_day.isoformat()
        data["fund_ids"] = None if self.fund_ids is None else list(self.fund_ids)
        data["sources"] = list(self.sources)
        for name in RULE_FIELDS:
            data[name] = _listed(data[name])
        return data

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> ProgramSettings:
        # notes and public_fund_id came later than the first saved runs: their defaults apply.
        known = {f.name: _tupled(f.name, data[f.name]) for f in fields(cls) if f.name in data}
        return replace(
            cls(**known),
            first_day=date.fromisoformat(data["first_day"]),
            last_day=date.fromisoformat(data["last_day"]),
            fund_ids=None if data["fund_ids"] is None else tuple(data["fund_ids"]),
            sources=tuple(data["sources"]),
        )


RULE_FIELDS = (
    "anonymous_limit_cents",
    "program_cap_cents",
    "deduct_fair_market_value",
    "exclusive_with",
    "priority",
    "local_postal_prefixes",
    "local_states",
)
_TUPLE_FIELDS = ("exclusive_with", "local_postal_prefixes", "local_states")


def _tupled(name: str, value: Any) -> Any:
    return tuple(value) if name in _TUPLE_FIELDS and value is not None else value


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


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
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ProgramSettings.RULE_FIELDS
    # The fund whose gift page shows this program's progress bar.
    public_fund_id: Mapped[int | None] = mapped_column(ForeignKey("funds.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    public_fund: Mapped[Fund | None] = relationship()
    runs: Mapped[list[ReportRun]] = relationship(back_populates="program", order_by="ReportRun.created_at.desc()")

    def settings(self) -> ProgramSettings:
        return ProgramSettings.from_program(self)


class ReportRun(Base):
    """One saved export: enough to say exactly what was sent, by whom, computed how."""

    __tablename__ = "report_runs"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(RUN_KINDS)})", name="kind"),
        CheckConstraint(f"format IN ({_in(RUN_FORMATS)})", name="format"),
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


class Pledge(Base):
    """A local-match funder's pledge to a program, with the document proving the intent (a
    signed pledge, a letter, an email as PDF or image). The document is kept in the database, so
    a backup of the database holds it too; it is loaded only when asked for."""

    __tablename__ = "grant_pledges"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("document_size > 0", name="document_size_positive"),
        CheckConstraint("document_type IN ('application/pdf', 'image/png', 'image/jpeg')", name="document_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("grant_programs.id"), index=True)
    funder_name: Mapped[str] = mapped_column(String(200))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    pledged_on: Mapped[date]  # the date on the document (local)
    document: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    document_name: Mapped[str] = mapped_column(String(255))  # as uploaded, for people
    document_type: Mapped[str] = mapped_column(String(50))  # from its first bytes, not its name
    document_size: Mapped[int]
    document_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))  # who recorded it: staff email or "cli:<user>"

    program: Mapped[GrantProgram] = relationship()


class Packet(Base):
    """The files of a funder packet run, as sent: the ZIP itself, what its cover sheet says and
    each file's name and SHA-256, so a funder link serves exactly what was prepared."""

    __tablename__ = "grant_packets"

    report_run_id: Mapped[int] = mapped_column(ForeignKey("report_runs.id"), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{name, size, sha256}], cover first

    run: Mapped[ReportRun] = relationship()


class FunderLink(Base):
    """A read-only page of one packet for a funder without an account. Only the SHA-256 of its
    random token is stored: the link is shown once, and a copy of the database opens nothing."""

    __tablename__ = "funder_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_run_id: Mapped[int] = mapped_column(ForeignKey("report_runs.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")  # whom it was made for
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(320))

    run: Mapped[ReportRun] = relationship()

    def open_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at
