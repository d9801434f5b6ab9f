"""Finding donors, their totals, and merging duplicates.

A merge moves every gift and membership of one donor (the duplicate) to another (the one kept)
and marks the duplicate `merged_into_id`; nothing is deleted, so the merge can be seen and
explained later. Callers own the transaction: nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update

from donations.extensions import db
from donations.ledger.currency import counted_gift
from donations.ledger.models import Donor, Gift, Membership

SEARCH_LIMIT = 50
# Details a merge copies to the donor kept when that donor has none.
FILLED_ON_MERGE = (
    "name",
    "organization",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "stripe_customer_id",
)


class MergeError(ValueError):
    pass


def resolve_merged(donor: Donor) -> Donor:
    """The donor that a merged duplicate now lives on (itself when never merged)."""
    seen = {donor.id}
    while donor.merged_into_id is not None:
        target = db.session.get(Donor, donor.merged_into_id)
        if target is None or target.id in seen:
            break
        seen.add(target.id)
        donor = target
    return donor


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(query: str) -> ColumnElement[bool]:
    """The search's condition: name, email or organization contains `query` (any case), or the
    postal code starts with it (the donors list and its export share it)."""
    query = query.strip()
    pattern = _like(query.casefold())
    postal = query.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(
        func.lower(Donor.name).like(pattern, escape="\\"),
        Donor.email_key.like(pattern, escape="\\"),
        func.lower(Donor.organization).like(pattern, escape="\\"),
        func.upper(Donor.postal_code).like(postal, escape="\\"),
    )


@dataclass(frozen=True)
class DonorMatch:
    donor: Donor
    gift_count: int
    given_cents: int


def search(query: str, *, limit: int = SEARCH_LIMIT) -> list[DonorMatch]:
    """Donors whose name, email or organization contains `query` (any case), or whose postal
    code starts with it; merged duplicates are left out."""
    query = query.strip()
    if not query:
        return []
    donors = db.session.scalars(
        select(Donor)
        .where(Donor.merged_into_id.is_(None), matching(query))
        .order_by(Donor.name.is_(None), Donor.name, Donor.id)
        .limit(limit)
    ).all()
    if not donors:
        return []
    totals = {
        donor_id: (count, total)
        for donor_id, count, total in db.session.execute(
            select(Gift.donor_id, func.count(Gift.id), func.coalesce(func.sum(Gift.amount_cents), 0))
            .where(Gift.donor_id.in_([d.id for d in donors]), counted_gift())
            .group_by(Gift.donor_id)
        )
    }
    return [DonorMatch(d, *totals.get(d.id, (0, 0))) for d in donors]


@dataclass(frozen=True)
class MergeResult:
    kept_id: int
    merged_id: int
    gift_ids: list[int]
    membership_ids: list[int]
    filled: dict[str, Any]


def lock_pair(first_id: int, second_id: int) -> tuple[Donor | None, Donor | None]:
    """The two donors, locked FOR UPDATE one at a time in id order (re-read, not from the
    identity map): merges of the same pair in opposite directions (A into B, B into A) then wait
    for each other instead of deadlocking."""
    locked = {
        donor_id: db.session.get(Donor, donor_id, with_for_update=True, populate_existing=True)
        for donor_id in sorted({first_id, second_id})
    }
    return locked[first_id], locked[second_id]


def check_merge(duplicate: Donor, kept: Donor) -> None:
    """Raise MergeError when `duplicate` cannot be merged into `kept` (the confirmation step asks
    this before anything moves; the merge asks again)."""
    if duplicate.id == kept.id:
        raise MergeError("Choose two different donors.")
    if duplicate.merged_into_id is not None:
        raise MergeError(f"Donor #{duplicate.id} was already merged into #{duplicate.merged_into_id}.")
    if kept.merged_into_id is not None:
        raise MergeError(f"Donor #{kept.id} was merged into #{kept.merged_into_id}: merge into that donor instead.")


def merge(duplicate: Donor, kept: Donor) -> MergeResult:
    """Move every gift and membership of `duplicate` to `kept` and mark the duplicate merged."""
    check_merge(duplicate, kept)
    gift_ids = list(db.session.scalars(select(Gift.id).where(Gift.donor_id == duplicate.id).order_by(Gift.id)))
    membership_ids = list(
        db.session.scalars(select(Membership.id).where(Membership.donor_id == duplicate.id).order_by(Membership.id))
    )
    db.session.execute(update(Gift).where(Gift.donor_id == duplicate.id).values(donor_id=kept.id))
    db.session.execute(update(Membership).where(Membership.donor_id == duplicate.id).values(donor_id=kept.id))
    # Earlier duplicates of the duplicate now point straight at the donor kept.
    db.session.execute(update(Donor).where(Donor.merged_into_id == duplicate.id).values(merged_into_id=kept.id))
    filled = {}
    for attribute in FILLED_ON_MERGE:
        value = getattr(duplicate, attribute)
        if value and not getattr(kept, attribute):
            setattr(kept, attribute, value)
            filled[attribute] = value
    duplicate.merged_into_id = kept.id
    db.session.flush()
    # The bulk updates bypassed the identity map: reload relationships on next access.
    db.session.expire(duplicate, ["gifts", "memberships"])
    db.session.expire(kept, ["gifts", "memberships"])
    return MergeResult(kept.id, duplicate.id, gift_ids, membership_ids, filled)


def merged_from(donor_id: int) -> list[Donor]:
    return list(db.session.scalars(select(Donor).where(Donor.merged_into_id == donor_id).order_by(Donor.id)))
