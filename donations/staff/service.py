"""The console's write actions on the ledger: each records an audit entry beside the change,
for the view's unit of work to commit together; on an error (raised) neither is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.accounts.service import StaffError
from donations.extensions import db
from donations.ledger import donor_edits, donors, edits, funds, offline
from donations.ledger.models import Donor, Fund, Gift
from donations.mail import service as mail
from donations.webhooks import outbox as webhooks


def change_gift_designation(
    gift_id: int, designation: edits.Designation, reason: str, actor: StaffUser, remote_addr: str | None
) -> None:
    reason = reason.strip()
    if not reason:
        raise StaffError("Say why the gift is changed.")
    gift = db.session.get(Gift, gift_id, with_for_update=True)
    if gift is None:
        raise StaffError("No such gift.")
    before, after = edits.change_designation(gift, designation)
    audit(
        "gift.edit",
        actor=actor,
        target_type="gift",
        target_id=gift.id,
        details={"before": before, "after": after},
        note=reason,
        remote_addr=remote_addr,
    )


def _offline_details(gift: Gift) -> dict[str, Any]:
    return {
        "donor_id": gift.donor_id,
        "fund": gift.fund.slug,
        "amount_cents": gift.amount_cents,
        "source": gift.source,
        "check_number": gift.check_number,
        "postmarked_on": gift.postmarked_on.isoformat() if gift.postmarked_on else None,
        "received_at": gift.received_at.isoformat() if gift.received_at else None,
    }


def _audit_offline_gift(gift: Gift, actor: StaffUser, remote_addr: str | None) -> None:
    audit(
        "gift.offline_create",
        actor=actor,
        target_type="gift",
        target_id=gift.id,
        details=_offline_details(gift),
        remote_addr=remote_addr,
    )


def _receipt(recorded: offline.RecordedOfflineGift) -> None:
    """The receipt (when asked for) and the outgoing webhook event (always)."""
    gift = recorded.gift
    if recorded.send_receipt:
        mail.queue_gift_receipt(gift.id, gift.donor_id, gift.donor.email)
    webhooks.gift_recorded(gift.id)


def record_offline_gift(entry: offline.OfflineGift, actor: StaffUser, remote_addr: str | None) -> Gift:
    recorded = offline.record_offline_gift(entry)
    _receipt(recorded)
    _audit_offline_gift(recorded.gift, actor, remote_addr)
    return recorded.gift


def record_offline_batch(entries: list[offline.OfflineGift], actor: StaffUser, remote_addr: str | None) -> list[Gift]:
    """A stack of checks in one transaction: all are recorded, or none."""
    recorded = offline.record_batch(entries)
    for entry in recorded:
        _receipt(entry)
    gifts = [entry.gift for entry in recorded]
    for gift in gifts:
        _audit_offline_gift(gift, actor, remote_addr)
    audit(
        "gift.offline_batch",
        actor=actor,
        target_type="batch",
        details={
            "gift_ids": [gift.id for gift in gifts],
            "count": len(gifts),
            "total_cents": sum(gift.amount_cents for gift in gifts),
        },
        remote_addr=remote_addr,
    )
    return gifts


def merge_donors(duplicate_id: int, kept_id: int, actor: StaffUser, remote_addr: str | None) -> donors.MergeResult:
    duplicate, kept = donors.lock_pair(duplicate_id, kept_id)
    if duplicate is None or kept is None:
        raise StaffError("No such donor.")
    result = donors.merge(duplicate, kept)
    entry = audit(
        "donor.merge",
        actor=actor,
        target_type="donor",
        target_id=kept.id,
        details={
            "merged_donor_id": duplicate.id,
            "merged_email": duplicate.email,
            "gift_ids": result.gift_ids,
            "membership_ids": result.membership_ids,
            "filled": result.filled,
        },
        remote_addr=remote_addr,
    )
    db.session.flush()  # the audit entry's id names this merge in the webhook events
    webhooks.donor_changed(kept, f"Donor #{duplicate.id} was merged into this donor", ["merged"], f"audit{entry.id}")
    webhooks.donor_changed(
        duplicate, f"This donor was merged into donor #{kept.id}", ["merged_into_donor_id"], f"audit{entry.id}"
    )
    return result


def correct_donor(
    donor_id: int, record: donor_edits.DonorRecord, actor: StaffUser, remote_addr: str | None
) -> dict[str, Any]:
    """Correct a donor's record through the ledger; the audit entry keeps before and after of
    the fields that changed (returned too). Raises EmailBelongsToAnother to offer the merge."""
    donor = db.session.get(Donor, donor_id, with_for_update=True)
    if donor is None:
        raise StaffError("No such donor.")
    before, after = donor_edits.correct_donor(donor, record)
    entry = audit(
        "donor.edit",
        actor=actor,
        target_type="donor",
        target_id=donor.id,
        details={"before": before, "after": after},
        remote_addr=remote_addr,
    )
    db.session.flush()  # the audit entry's id names this correction in the webhook event
    webhooks.donor_changed(donor, "Corrected by staff", sorted(after), f"audit{entry.id}")
    return after


@dataclass(frozen=True)
class FundSettings:
    slug: str
    name: str
    description: str
    goal_cents: int | None
    suggested_amounts: dict[str, list[int]]
    active: bool
    is_default: bool
    show_progress: bool
    default_frequency: str | None = None
    amount_notes: dict[str, str] = field(default_factory=dict)
    monthly_prompt: str = ""
    newsletter_offer: str = ""  # "" as the newsroom's setting, "on", "off"
    newsletter_wording: str = ""
    sponsor: funds.Sponsor | None = None  # None: the newsroom's own fund, not deductible


def create_fund(settings: FundSettings, actor: StaffUser, remote_addr: str | None) -> Fund:
    fund = funds.create_fund(
        slug=settings.slug,
        name=settings.name,
        description=settings.description,
        goal_cents=settings.goal_cents,
        suggested_amounts=settings.suggested_amounts,
        is_default=settings.is_default,
        show_progress=settings.show_progress,
        active=settings.active,
        default_frequency=settings.default_frequency,
        amount_notes=settings.amount_notes,
        monthly_prompt=settings.monthly_prompt,
        newsletter_offer=settings.newsletter_offer,
        newsletter_wording=settings.newsletter_wording,
        sponsor=settings.sponsor,
    )
    audit(
        "fund.create",
        actor=actor,
        target_type="fund",
        target_id=fund.id,
        details={"after": funds.fund_settings(fund)},
        remote_addr=remote_addr,
    )
    return fund


def update_fund(fund_id: int, settings: FundSettings, actor: StaffUser, remote_addr: str | None) -> Fund:
    fund = db.session.get(Fund, fund_id, with_for_update=True)
    if fund is None:
        raise StaffError("No such fund.")
    before, after = funds.update_fund(
        fund,
        slug=settings.slug,
        name=settings.name,
        description=settings.description,
        goal_cents=settings.goal_cents,
        suggested_amounts=settings.suggested_amounts,
        active=settings.active,
        is_default=settings.is_default,
        show_progress=settings.show_progress,
        default_frequency=settings.default_frequency,
        amount_notes=settings.amount_notes,
        monthly_prompt=settings.monthly_prompt,
        newsletter_offer=settings.newsletter_offer,
        newsletter_wording=settings.newsletter_wording,
        sponsor=settings.sponsor,
    )
    if before == after:
        raise StaffError("Nothing changed.")
    audit(
        "fund.edit",
        actor=actor,
        target_type="fund",
        target_id=fund.id,
        details={"before": before, "after": after},
        remote_addr=remote_addr,
    )
    return fund
