"""Staff corrections to a donor's record: name, email, postal address, organization and
communication preferences.

The gifts are never touched; the change returns only the fields that changed, before and after,
for the caller to audit. An email address that already belongs to another donor is refused with
that donor (`EmailBelongsToAnother`): the two are the same person, and the way to join them is a
merge. Callers own the transaction: nothing here commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select

from donations.extensions import db
from donations.ledger.donors import resolve_merged
from donations.ledger.models import Donor
from donations.ledger.service import LedgerError, email_key

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
LIMITS = {
    "name": 200,
    "email": 320,
    "organization": 200,
    "address_line1": 200,
    "address_line2": 200,
    "city": 100,
    "region": 100,
    "postal_code": 20,
}


class EmailBelongsToAnother(LedgerError):
    """The new email is another donor's: offer the merge."""

    def __init__(self, other: Donor) -> None:
        super().__init__(f"{other.email} already belongs to donor #{other.id} ({other.display_name}).")
        self.other = other


@dataclass(frozen=True)
class DonorRecord:
    """A donor's correctable details, as staff see and change them."""

    name: str | None
    email: str
    organization: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None
    contact_by_email: bool
    contact_by_mail: bool

    @classmethod
    def of(cls, donor: Donor) -> DonorRecord:
        return cls(**{f.name: getattr(donor, f.name) for f in fields(cls)})


def _clean(record: DonorRecord) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, str):
            value = " ".join(value.split()) or None
        values[f.name] = value
    for name, limit in LIMITS.items():
        if values[name] is not None and len(values[name]) > limit:
            raise LedgerError(f"The {name.replace('_', ' ')} is longer than {limit} characters.")
    if not values["email"] or not EMAIL.fullmatch(values["email"]):
        raise LedgerError("Enter an email address like name@example.org.")
    if values["country"] is not None:
        values["country"] = values["country"].upper()
        if not re.fullmatch(r"[A-Z]{2}", values["country"]):
            raise LedgerError("The country is its two-letter code, like US or CA.")
    return values


def correct_donor(donor: Donor, record: DonorRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply `record` to the donor; returns (before, after) of the fields that changed. Raises
    LedgerError when nothing changed or a value is not valid, EmailBelongsToAnother when the
    email is another donor's."""
    if donor.merged_into_id is not None:
        raise LedgerError(f"Donor #{donor.id} was merged into #{donor.merged_into_id}: correct that donor instead.")
    if donor.erased_at is not None:
        raise LedgerError(f"Donor #{donor.id} was erased: there is nothing to correct.")
    values = _clean(record)
    key = email_key(values["email"])
    if key != donor.email_key:
        other = db.session.scalar(select(Donor).where(Donor.email_key == key))
        if other is not None:
            raise EmailBelongsToAnother(resolve_merged(other))
    before = {name: getattr(donor, name) for name, value in values.items() if getattr(donor, name) != value}
    if not before:
        raise LedgerError("Nothing changed.")
    after = {name: values[name] for name in before}
    for name, value in after.items():
        setattr(donor, name, value)
    if "email" in after:
        donor.email_key = key
    db.session.flush()
    return before, after
