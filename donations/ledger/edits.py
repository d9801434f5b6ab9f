"""Staff corrections to a gift's designation: which fund it went to and whom it honors.

Money is never edited (amounts and dates change only through reversals); these fields are what
a donor's note or a data-entry slip can get wrong. Each change returns its before and after so
the caller can audit it. Callers own the transaction: nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from donations.extensions import db
from donations.ledger.models import Fund, Gift
from donations.ledger.service import LedgerError

TRIBUTE_KINDS = ("honor", "memory")


@dataclass(frozen=True)
class Designation:
    fund_id: int
    tribute_kind: str | None
    tribute_name: str | None


def designation_of(gift: Gift) -> dict[str, Any]:
    return {
        "fund_id": gift.fund_id,
        "fund": gift.fund.slug,
        "tribute_kind": gift.tribute_kind,
        "tribute_name": gift.tribute_name,
    }


def change_designation(gift: Gift, new: Designation) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply `new` to the gift; returns (before, after). Raises LedgerError when the change is
    invalid or changes nothing."""
    fund = db.session.get(Fund, new.fund_id)
    if fund is None:
        raise LedgerError("Choose a fund.")
    kind = new.tribute_kind or None
    name = (new.tribute_name or "").strip() or None
    if kind not in (None, *TRIBUTE_KINDS):
        raise LedgerError("A tribute is in honor or in memory of someone.")
    if kind and not name:
        raise LedgerError("Name the person the tribute is for.")
    if name and not kind:
        raise LedgerError("Say whether the tribute is in honor or in memory.")
    before = designation_of(gift)
    if (gift.fund_id, gift.tribute_kind, gift.tribute_name) == (fund.id, kind, name):
        raise LedgerError("Nothing changed.")
    gift.fund = fund
    gift.tribute_kind = kind
    gift.tribute_name = name
    db.session.flush()
    return before, designation_of(gift)
