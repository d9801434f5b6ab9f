"""Gifts imported from another system's export (`history csv`): ordinary paid gifts, with an
imported-from marker (source system + external id) so that a re-run never records one twice.
Callers own the transaction; nothing here commits or queues mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from donations.clock import utcnow
from donations.extensions import Base, db
from donations.ledger import offline
from donations.ledger import service as ledger
from donations.ledger.currency import newsroom_currency
from donations.ledger.donors import resolve_merged
from donations.ledger.models import Fund, Gift, GiftSource, GiftStatus
from donations.ledger.offline import check_tax_status


class ImportedGift(Base):
    __tablename__ = "imported_gifts"
    __table_args__ = (UniqueConstraint("source_system", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_system: Mapped[str] = mapped_column(String(20))  # generic | npsp | donorbox
    external_id: Mapped[str] = mapped_column(String(255))
    gift_id: Mapped[int] = mapped_column(ForeignKey("gifts.id"), index=True)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class ImportedRow:
    source_system: str
    external_id: str
    received_at: datetime
    amount_cents: int
    email: str
    name: str | None
    organization: str | None
    postal_code: str | None
    frequency: str  # one_time | monthly | annual
    source: str  # GiftSource: check | cash | other | sponsor (a sponsor-held fund's, and only those)
    check_number: str | None
    fund_id: int
    anonymous: bool
    tribute_kind: str | None
    tribute_name: str | None


def already_imported(source_system: str, external_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(external_ids), 500):
        chunk = external_ids[start : start + 500]
        found.update(
            db.session.scalars(
                select(ImportedGift.external_id).where(
                    ImportedGift.source_system == source_system, ImportedGift.external_id.in_(chunk)
                )
            )
        )
    return found


@dataclass(frozen=True)
class Recorded:
    gift: Gift | None  # the new gift; None when nothing was recorded
    same_check_as: Gift | None = None  # the same check, recorded before (by hand or by an import)


def recorded_check(row: ImportedRow) -> Gift | None:
    """The gift already recorded for this row's check (number, amount, donor), by the offline
    form or by an import; the export has no postmark, so the postmark is left open."""
    if row.source != GiftSource.CHECK:
        return None
    donor = ledger.find_donor(row.email)
    if donor is None:
        return None
    return offline.same_check(
        resolve_merged(donor), check_number=row.check_number, amount_cents=row.amount_cents, postmarked_on=None
    )


def record_imported_gift(row: ImportedRow) -> Recorded:
    """The row's gift, its donor matched by case-folded email (merged donors resolved, as online
    donors are). Nothing is recorded when this system's external id was imported before, or
    when the row is a check already recorded (`same_check_as`)."""
    if already_imported(row.source_system, [row.external_id]):
        return Recorded(None)
    same = recorded_check(row)
    if same is not None:
        return Recorded(None, same_check_as=same)
    fund = db.session.get(Fund, row.fund_id)
    if fund is None:
        raise ledger.LedgerError("no such fund")
    check_tax_status(fund, row.source)
    donor = ledger.find_or_create_donor(row.email, name=row.name, postal_code=row.postal_code)
    gift = Gift(
        donor=donor,
        fund=fund,
        amount_cents=row.amount_cents,
        fee_covered_cents=0,
        currency=newsroom_currency(),
        frequency=row.frequency,
        source=row.source,
        status=GiftStatus.PAID,
        tax_deductible=fund.sponsor_held,
        received_at=row.received_at,
        organization=row.organization,
        anonymous=row.anonymous,
        tribute_kind=row.tribute_kind,
        tribute_name=row.tribute_name,
        attribution={"channel": "import", "imported_from": row.source_system, "external_id": row.external_id},
        check_number=row.check_number,
    )
    db.session.add(gift)
    db.session.flush()
    db.session.add(ImportedGift(source_system=row.source_system, external_id=row.external_id, gift_id=gift.id))
    return Recorded(gift)
