"""A donor's personal data, on request: a full export (JSON), and erasure.

Erasure anonymizes the person and keeps the money: the donor's name, email, organization and
address, the names in tributes, the referrer, the addresses of queued and sent mail and the
personal fields of the Stripe events that mention them are erased; gifts, reversals and
memberships (amounts, dates, funds, Stripe ids) stay, because the ledger and the grant reports
already sent to funders must still add up. An organization's gift stays an organization's gift
(its name becomes ERASED_ORGANIZATION) so that grant rules still exclude it. Donors merged into
the one erased are the same person and are erased with it. Stripe keeps its own copy of the
customer: erase it there too (Dashboard -> Customers -> delete).

Callers own the transaction and the audit entry's actor; nothing here commits.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import ColumnElement, Text, cast, func, or_, select

from donations.clock import utcnow
from donations.extensions import db, unit_of_work
from donations.ledger.donors import merged_from, resolve_merged
from donations.ledger.models import Donor, Gift, Membership, MembershipChange, NewsletterOptIn, Reversal
from donations.mail.models import OutboxMessage, OutboxStatus
from donations.newsroom import current_look
from donations.payments.models import StripeEvent
from donations.webhooks import outbox as webhooks

ERASED_ORGANIZATION = "(erased organization)"
# Personal fields in Stripe's objects (customer_details, billing_details, shipping, address).
STRIPE_PERSONAL_KEYS = frozenset(
    {"name", "individual_name", "phone", "line1", "line2", "city", "state", "postal_code"}
    | {"customer_name", "customer_phone"}
)
DONOR_PERSONAL_FIELDS = (
    *("name", "organization"),
    *("address_line1", "address_line2", "city", "region", "postal_code", "country"),
)
STRIPE_EMAIL_KEYS = frozenset({"email", "customer_email", "receipt_email"})


class PrivacyError(ValueError):
    """The request cannot be carried out (unknown donor, already erased): a 4xx."""


def erased_email(donor_id: int) -> str:
    # .invalid is reserved (RFC 2606): mail to it can never be delivered to anyone.
    return f"erased-{donor_id}@invalid"


def _person(donor_id: int) -> tuple[Donor, list[Donor]]:
    """The donor kept after merges, and the duplicates merged into it (the same person)."""
    donor = db.session.get(Donor, donor_id)
    if donor is None:
        raise PrivacyError(f"There is no donor #{donor_id}.")
    donor = resolve_merged(donor)
    return donor, list(merged_from(donor.id))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _personal_fields(donor: Donor) -> dict[str, Any]:
    return {
        "id": donor.id,
        "email": donor.email,
        "name": donor.name,
        "organization": donor.organization,
        "address_line1": donor.address_line1,
        "address_line2": donor.address_line2,
        "city": donor.city,
        "region": donor.region,
        "postal_code": donor.postal_code,
        "country": donor.country,
        "stripe_customer_id": donor.stripe_customer_id,
        "created_at": _iso(donor.created_at),
        "erased_at": _iso(donor.erased_at),
    }


def export_donor(donor_id: int) -> dict[str, Any]:
    """Everything we hold about the person: personal fields, gifts (with reversals),
    memberships (with amount changes) and the mail we sent or queued."""
    donor, merged = _person(donor_id)
    ids = [donor.id, *(other.id for other in merged)]
    gifts = db.session.scalars(select(Gift).where(Gift.donor_id.in_(ids)).order_by(Gift.created_at, Gift.id)).all()
    reversals: dict[int, list[Reversal]] = {}
    for reversal in db.session.scalars(
        select(Reversal).where(Reversal.gift_id.in_([g.id for g in gifts])).order_by(Reversal.reversed_at, Reversal.id)
    ):
        reversals.setdefault(reversal.gift_id, []).append(reversal)
    memberships = db.session.scalars(
        select(Membership).where(Membership.donor_id.in_(ids)).order_by(Membership.created_at, Membership.id)
    ).all()
    changes: dict[int, list[MembershipChange]] = {}
    for change in db.session.scalars(
        select(MembershipChange)
        .where(MembershipChange.membership_id.in_([m.id for m in memberships]))
        .order_by(MembershipChange.changed_at, MembershipChange.id)
    ):
        changes.setdefault(change.membership_id, []).append(change)
    opt_ins = {
        opt_in.gift_id: opt_in
        for opt_in in db.session.scalars(
            select(NewsletterOptIn).where(NewsletterOptIn.gift_id.in_([g.id for g in gifts]))
        )
    }
    mail = db.session.scalars(
        select(OutboxMessage).where(_mail_of(donor, merged)).order_by(OutboxMessage.created_at, OutboxMessage.id)
    ).all()
    return {
        "exported_at": utcnow().isoformat(),
        "newsroom": current_look().name,
        "note": "Gifts to this newsroom are not tax deductible, except gifts a fiscal sponsor received for a "
        "fund it holds (tax_deductible: true, with the sponsor named).",
        "donor": _personal_fields(donor),
        "merged_donors": [_personal_fields(other) for other in merged],
        "gifts": [
            {
                "id": gift.id,
                "fund": gift.fund.name,
                "amount_cents": gift.amount_cents,
                "fee_covered_cents": gift.fee_covered_cents,
                "currency": gift.currency,
                "frequency": gift.frequency,
                "source": gift.source,
                "status": gift.status,
                "tax_deductible": gift.tax_deductible,
                "received_by_fiscal_sponsor": gift.fund.sponsor_name if gift.tax_deductible else None,
                "received_at": _iso(gift.received_at),
                "organization": gift.organization,
                "anonymous": gift.anonymous,
                "tribute_kind": gift.tribute_kind,
                "tribute_name": gift.tribute_name,
                "attribution": gift.attribution,
                "card_last4": gift.card_last4,
                "check_number": gift.check_number,
                "membership_id": gift.membership_id,
                "reversals": [
                    {"kind": r.kind, "amount_cents": r.amount_cents, "reversed_at": _iso(r.reversed_at)}
                    for r in reversals.get(gift.id, [])
                ],
                "newsletter_opt_in": {"at": _iso(opt_in.opted_in_at), "wording": opt_in.wording}
                if (opt_in := opt_ins.get(gift.id))
                else None,
            }
            for gift in gifts
        ],
        "memberships": [
            {
                "id": membership.id,
                "fund": membership.fund.name,
                "amount_cents": membership.amount_cents,
                "currency": membership.currency,
                "interval": membership.interval,
                "status": membership.status,
                "started_at": _iso(membership.started_at),
                "canceled_at": _iso(membership.canceled_at),
                "paused_until": _iso(membership.paused_until),
                "amount_changes": [
                    {
                        "at": _iso(c.changed_at),
                        "from_cents": c.old_amount_cents,
                        "to_cents": c.new_amount_cents,
                        "from_interval": c.old_interval,
                        "to_interval": c.new_interval,
                    }
                    for c in changes.get(membership.id, [])
                ],
            }
            for membership in memberships
        ],
        "emails": [
            {
                "kind": message.kind,
                "to": message.to_address,
                "status": message.status,
                "queued_at": _iso(message.created_at),
                "sent_at": _iso(message.sent_at),
            }
            for message in mail
        ],
    }


def _mail_of(donor: Donor, merged: list[Donor]) -> ColumnElement[bool]:
    people = [donor, *merged]
    return or_(
        OutboxMessage.donor_id.in_([p.id for p in people]),
        func.lower(OutboxMessage.to_address).in_([p.email_key for p in people]),
    )


def _scrub(value: Any, emails: set[str], replacement: str) -> Any:
    """A copy of a Stripe object without the person's fields."""
    if isinstance(value, dict):
        scrubbed: dict[str, Any] = {}
        for key, item in value.items():
            if key in STRIPE_PERSONAL_KEYS and isinstance(item, str):
                scrubbed[key] = None
            elif key == "business_name" and isinstance(item, str):
                scrubbed[key] = ERASED_ORGANIZATION
            elif key in STRIPE_EMAIL_KEYS and isinstance(item, str):
                scrubbed[key] = replacement
            else:
                scrubbed[key] = _scrub(item, emails, replacement)
        return scrubbed
    if isinstance(value, list):
        return [_scrub(item, emails, replacement) for item in value]
    if isinstance(value, str) and value.strip().lower() in emails:
        return replacement
    return value


def _events_mentioning(emails: set[str]) -> list[StripeEvent]:
    text = func.lower(cast(StripeEvent.payload, Text))
    # Stored JSON escapes non-ASCII characters: look for the email as it is written there.
    patterns = {json.dumps(email)[1:-1] for email in emails} | emails
    return list(
        db.session.scalars(
            select(StripeEvent).where(or_(*(text.contains(p, autoescape=True) for p in patterns))).with_for_update()
        )
    )


def erase_donor(donor_id: int) -> dict[str, Any]:
    """Anonymize the person (see the module's docstring). Returns what was done, for the audit
    entry (counts and ids only: no personal data)."""
    donor, merged = _person(donor_id)
    if donor.erased_at is not None:
        raise PrivacyError(f"Donor #{donor.id} was already erased on {donor.erased_at:%Y-%m-%d}.")
    people = [donor, *merged]
    emails = {p.email.strip().lower() for p in people} | {p.email_key.lower() for p in people}
    replacement = erased_email(donor.id)
    mail = db.session.scalars(select(OutboxMessage).where(_mail_of(donor, merged)).with_for_update()).all()
    events = _events_mentioning(emails)
    now = utcnow()
    # The one write to donors and gifts outside the ledger, and on purpose: erasure rewrites
    # personal fields in place, which the append-only ledger itself never does.
    for person in people:
        person.email = person.email_key = erased_email(person.id)
        for field in DONOR_PERSONAL_FIELDS:
            setattr(person, field, None)
        person.erased_at = now
    gifts = db.session.scalars(select(Gift).where(Gift.donor_id.in_([p.id for p in people]))).all()
    for gift in gifts:
        gift.tribute_name = None
        if gift.organization:
            gift.organization = ERASED_ORGANIZATION
        gift.attribution = {k: v for k, v in (gift.attribution or {}).items() if k != "referrer"}
    withdrawn = 0
    for message in mail:
        message.to_address = replacement
        if message.status == OutboxStatus.PENDING:
            message.status = OutboxStatus.PARKED
            message.parked_at = now
            message.last_error = "not sent: the donor's data was erased"
            withdrawn += 1
    for event in events:
        event.payload = _scrub(event.payload, emails, replacement)
    hooks_withdrawn = webhooks.withdraw_mentioning(emails)
    db.session.flush()
    # Receivers (a CRM) hear of the erasure, to erase their copy too.
    webhooks.donor_changed(donor, "Personal data erased on request", ["erased"], "erased")
    return {
        "donor_ids": [p.id for p in people],
        "gifts_kept": len(gifts),
        "emails_withdrawn": withdrawn,
        "stripe_events_scrubbed": len(events),
        "webhook_events_withdrawn": hooks_withdrawn,
    }


# -- command line --------------------------------------------------------------------------------

privacy_cli = AppGroup("privacy", help="A donor's personal data: export or erase on request.")


@privacy_cli.command("export")
@click.argument("donor_id", type=int)
@click.option("-o", "--output", type=click.File("w"), default="-", help="File to write (default: standard output).")
def export_command(donor_id: int, output: Any) -> None:
    """Write everything held about DONOR_ID as JSON."""
    from donations.accounts.audit import audit, cli_actor

    try:
        with unit_of_work():
            data = export_donor(donor_id)
            audit("donor.privacy_export", actor=cli_actor(), target_type="donor", target_id=data["donor"]["id"])
    except PrivacyError as exc:
        raise click.ClickException(str(exc)) from None
    json.dump(data, output, indent=2, ensure_ascii=False)
    output.write("\n")


@privacy_cli.command("erase")
@click.argument("donor_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(donor_id: int, yes: bool) -> None:
    """Erase DONOR_ID's personal data; the gifts stay in the ledger, anonymized."""
    from donations.accounts.audit import audit, cli_actor

    if not yes:
        click.confirm(f"Erase the personal data of donor #{donor_id}? This cannot be undone", abort=True)
    try:
        with unit_of_work():
            done = erase_donor(donor_id)
            audit("donor.erase", actor=cli_actor(), target_type="donor", target_id=done["donor_ids"][0], details=done)
    except PrivacyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Erased donor #{done['donor_ids'][0]}: {done['gifts_kept']} gifts kept, anonymized.")
