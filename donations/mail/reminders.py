"""Reminders before an annual membership renews (the worker's daily `renewal-reminders`).

An annual charge is large and a year apart: members are told RENEWAL_REMINDER_DAYS ahead, with
the amount, the date and where to manage the membership. Once per membership per renewal (the
message's dedupe key names both), however often the job runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from donations.extensions import db
from donations.ledger.models import Donor, Membership, MembershipStatus
from donations.mail.service import queue_renewal_reminder


def due_for_reminder(now: datetime) -> list[Membership]:
    """Active annual memberships renewing within the reminder window that will be charged:
    not set to end, not paused through the renewal, their donor not erased."""
    until = now + timedelta(days=int(current_app.config["RENEWAL_REMINDER_DAYS"]))
    return list(
        db.session.scalars(
            select(Membership)
            .join(Donor, Donor.id == Membership.donor_id)
            .options(joinedload(Membership.donor), joinedload(Membership.fund))
            .where(
                Membership.interval == "year",
                Membership.status == MembershipStatus.ACTIVE,
                Membership.cancel_at_period_end.is_(False),
                Membership.current_period_end > now,
                Membership.current_period_end <= until,
                or_(Membership.paused_until.is_(None), Membership.paused_until <= Membership.current_period_end),
                Donor.erased_at.is_(None),
            )
            .order_by(Membership.id)
        )
    )


def queue_renewal_reminders(now: datetime) -> int:
    """Queue the reminders due (in the caller's transaction); returns how many were new."""
    queued = 0
    for membership in due_for_reminder(now):
        if membership.current_period_end is not None and queue_renewal_reminder(
            membership, membership.current_period_end
        ):
            queued += 1
    return queued
