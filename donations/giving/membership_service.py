"""Membership self-service without passwords.

A member asks for a link at /membership; if the email is a donor's, a signed link is queued in
the outbox. The link is single-purpose (its own signing salt), names the donor and carries a
keyed hash of the email it was sent to (never the address itself: links end up in logs and
shared screens), and expires (MAGIC_LINK_MAX_AGE, 24 hours by default). It is built on the
configured PUBLIC_URL, never on the request's Host header, which the requester chooses.

Each link is a row of `member_links`: it opens one browser once (opening it again says it was
used), and that browser's session is that row, so signing out ends it on the server and a copy
of the cookie stops working. The session lasts until the link would have expired; the token
leaves the address bar at once, so it never reaches another site in a Referer.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import CursorResult, ForeignKey, select, update
from sqlalchemy.orm import Mapped, mapped_column

from donations.clock import from_timestamp, utcnow
from donations.extensions import Base, db
from donations.giving.service import AmountOutOfRange, check_amount
from donations.ledger import memberships
from donations.ledger import service as ledger
from donations.ledger.donors import resolve_merged
from donations.ledger.funds import funds_for_choice
from donations.ledger.models import (
    FREQUENCY_INTERVAL,
    INTERVAL_FREQUENCY,
    RECEIVED_STATUSES,
    Donor,
    Fund,
    Gift,
    GiftStatus,
    Membership,
    MembershipStatus,
)
from donations.mail import card_links, statements
from donations.mail import service as mail
from donations.mail.render import public_url
from donations.money import format_money
from donations.payments import account_setup, events
from donations.payments.gateway import MembershipUpdate, get_gateway
from donations.payments.local import billing as local_billing

LINK_SALT = "membership-self-service-link"
SESSION_KEY = "membership_member"
GIFTS_SHOWN = 100
# A link "issued" further ahead than this is not ours (clocks differ by seconds, not minutes).
CLOCK_SKEW_SECONDS = 300


class LinkInvalid(ValueError):
    """Not a link we signed for this purpose, or its donor is gone."""


class LinkExpired(LinkInvalid):
    pass


class LinkUsed(LinkInvalid):
    """Opened once already: a link signs in one browser, once."""


class MemberLink(Base):
    """One emailed link, and the member's session it opened (if it has)."""

    __tablename__ = "member_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"), index=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]  # the link's end, and its session's
    used_at: Mapped[datetime | None]  # opened: the session began
    signed_out_at: Mapped[datetime | None]  # the session ended


class NotYours(LookupError):
    """No such membership among the signed-in member's: a 404."""


class ChangeRefused(ValueError):
    """A change the member asked for that cannot be made (bad amount, canceled): a 400."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=LINK_SALT)


def _max_age() -> int:
    return int(current_app.config["MAGIC_LINK_MAX_AGE"])


# The link -----------------------------------------------------------------------------------


def _email_check(email_key: str) -> str:
    """Stands for the email in the link: the link dies when the donor's email changes (or is
    erased). Keyed, so that a guessed address cannot be confirmed against a link."""
    secret = current_app.config["SECRET_KEY"]
    key = (secret if isinstance(secret, bytes) else str(secret).encode()) + LINK_SALT.encode()
    return hmac.new(key, email_key.encode(), hashlib.sha256).hexdigest()[:32]


def make_link_token(donor: Donor, issued_at: int | None = None) -> str:
    """A new link for `donor` (its row added to the session, for the caller to commit)."""
    issued = int(time.time()) if issued_at is None else issued_at
    link = MemberLink(
        donor_id=donor.id, issued_at=from_timestamp(issued), expires_at=from_timestamp(issued + _max_age())
    )
    db.session.add(link)
    db.session.flush()
    data = {"link": link.id, "donor": donor.id, "email": _email_check(donor.email_key), "issued": issued}
    return _serializer().dumps(data)


def read_link_token(token: str) -> tuple[Donor, MemberLink]:
    """The donor and the link this token is. Raises LinkExpired, LinkUsed or LinkInvalid."""
    try:
        data: Any = _serializer().loads(token)
    except BadSignature:
        raise LinkInvalid("this link is not one we sent") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("link"), int)
        and isinstance(data.get("donor"), int)
        and isinstance(data.get("email"), str)
        and isinstance(data.get("issued"), int)
    ):
        raise LinkInvalid("this link is not one we sent")
    now = int(time.time())
    if data["issued"] > now + CLOCK_SKEW_SECONDS:
        raise LinkInvalid("this link is not one we sent")
    link = db.session.get(MemberLink, data["link"])
    if link is None or link.donor_id != data["donor"]:
        raise LinkInvalid("this link is not one we sent")
    if link.used_at is not None:
        raise LinkUsed("this link has been used")
    if utcnow() > link.expires_at:
        raise LinkExpired("this link has expired")
    donor = db.session.get(Donor, data["donor"])
    # The email is part of the link: once the donor's email changes (or is erased), it is dead.
    if donor is None or donor.erased_at is not None or _email_check(donor.email_key) != data["email"]:
        raise LinkInvalid("this link is no longer valid")
    return resolve_merged(donor), link  # a merged duplicate's link opens the surviving record


def request_link(email: str) -> None:
    """Queue a link to `email` if it is a donor's; do nothing otherwise (the caller answers
    the same either way)."""
    donor = ledger.find_donor(email)
    if donor is None or donor.erased_at is not None:
        return
    issued = int(time.time())
    url = public_url(url_for("membership.open_link", token=make_link_token(donor, issued)))
    expires = from_timestamp(issued + _max_age())
    mail.queue_magic_link(donor, url, expires)


# The signed-in member -----------------------------------------------------------------------


def sign_in(session: Any, link: MemberLink) -> None:
    """Open the member's session with this link, once: a second opening (a copy of the link, a
    double click) raises LinkUsed. A session this browser had before ends."""
    claimed = db.session.execute(
        update(MemberLink)
        .where(MemberLink.id == link.id, MemberLink.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], claimed).rowcount != 1:  # DML gives a CursorResult
        raise LinkUsed("this link has been used")
    _end(session)
    session[SESSION_KEY] = {"link": link.id}


def _end(session: Any) -> None:
    entry = session.pop(SESSION_KEY, None)
    if isinstance(entry, dict) and isinstance(entry.get("link"), int):
        db.session.execute(
            update(MemberLink)
            .where(MemberLink.id == entry["link"], MemberLink.signed_out_at.is_(None))
            .values(signed_out_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def sign_out(session: Any) -> None:
    """End the session on the server: the cookie, and any copy of it, opens nothing more."""
    _end(session)


def signed_in_donor(session: Any) -> Donor | None:
    entry = session.get(SESSION_KEY)
    if not isinstance(entry, dict) or not isinstance(entry.get("link"), int):
        return None
    link = db.session.get(MemberLink, entry["link"])
    if link is None or link.used_at is None or link.signed_out_at is not None or utcnow() > link.expires_at:
        return None
    donor = db.session.get(Donor, link.donor_id)
    if donor is None or donor.erased_at is not None:
        return None
    return resolve_merged(donor)


# The member's page ------------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipRow:
    membership: Membership
    level: str
    amount: str  # "$15.00 a month"
    renews_on: datetime | None


@dataclass(frozen=True)
class Account:
    donor: Donor
    memberships: list[MembershipRow]
    gifts: list[Gift]
    gateway: str
    statement_url: str | None  # where the member asks for a year's statement by email
    # Paid at Stripe, its event stored but not applied by the worker yet: shown as processing.
    processing: list[Gift] = field(default_factory=list)


def describe(membership: Membership) -> MembershipRow:
    per = "month" if membership.interval == "month" else "year"
    renews = (
        membership.current_period_end
        if membership.status in (MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)
        and not membership.cancel_at_period_end
        else None
    )
    return MembershipRow(
        membership=membership,
        level=memberships.level_of(membership),
        amount=f"{format_money(membership.amount_cents, membership.currency)} a {per}",
        renews_on=renews,
    )


def account(donor: Donor) -> Account:
    rows = db.session.scalars(
        select(Membership).where(Membership.donor_id == donor.id).order_by(Membership.created_at.desc())
    ).all()
    gifts = db.session.scalars(
        select(Gift)
        .where(Gift.donor_id == donor.id, Gift.status.in_(RECEIVED_STATUSES))
        .order_by(Gift.received_at.desc(), Gift.id.desc())
        .limit(GIFTS_SHOWN)
    ).all()
    return Account(
        donor=donor,
        memberships=[describe(m) for m in rows],
        gifts=list(gifts),
        gateway=current_app.config["PAYMENTS_GATEWAY"],
        statement_url=statements.statement_link(donor.id) if gifts else None,
        processing=_processing(donor),
    )


def _processing(donor: Donor) -> list[Gift]:
    """The donor's unpaid gifts whose checkout's event is stored and waiting for the worker."""
    pending = db.session.scalars(
        select(Gift).where(
            Gift.donor_id == donor.id, Gift.status == GiftStatus.PENDING, Gift.stripe_checkout_session_id.is_not(None)
        )
    ).all()
    waiting = events.waiting_objects([gift.stripe_checkout_session_id or "" for gift in pending])
    return [gift for gift in pending if gift.stripe_checkout_session_id in waiting]


def _own_membership(donor: Donor, membership_id: int) -> Membership:
    membership = db.session.get(Membership, membership_id)
    if membership is None or membership.donor_id != donor.id:
        raise NotYours(membership_id)
    return membership


def portal_url(donor: Donor, membership_id: int, return_url: str) -> str:
    """Where the member manages this membership: Stripe's Billing Portal for its customer, or
    the local gateway's page. GatewayError reaches the caller (a retry page)."""
    membership = _own_membership(donor, membership_id)
    if not membership.stripe_customer_id:
        raise ChangeRefused("This membership cannot be managed online; please write to us.")
    # The portal configuration `setup-stripe` made lists the fund's prices (switching amount);
    # without one, Stripe uses the account's default configuration.
    return get_gateway().create_billing_portal_session(
        membership.stripe_customer_id, return_url, account_setup.portal_configuration_id()
    )


# The local gateway's portal -------------------------------------------------------------------


def local_portal(donor: Donor, customer_id: str) -> list[MembershipRow]:
    """The member's local memberships under this customer that can still be changed."""
    rows = db.session.scalars(
        select(Membership)
        .where(
            Membership.donor_id == donor.id,
            Membership.stripe_customer_id == customer_id,
            Membership.stripe_subscription_id.startswith(local_billing.LOCAL_SUBSCRIPTION_PREFIX),
        )
        .order_by(Membership.created_at.desc())
    ).all()
    if not rows:
        raise NotYours(customer_id)
    return [describe(m) for m in rows]


def local_cards(rows: list[MembershipRow]) -> dict[int, str]:
    """The last four digits of the card on file of each local membership shown, by its id."""
    return local_billing.cards_on_file([row.membership.id for row in rows])


def _changeable(donor: Donor, membership_id: int) -> Membership:
    membership = _own_membership(donor, membership_id)
    if not (membership.stripe_subscription_id or "").startswith(local_billing.LOCAL_SUBSCRIPTION_PREFIX):
        raise NotYours(membership_id)
    if membership.status == MembershipStatus.CANCELED:
        raise ChangeRefused("This membership has ended.")
    return membership


def change_amount(donor: Donor, membership_id: int, amount_cents: int) -> Membership:
    """The local portal's amount form: the same frequency and fund, a new amount."""
    membership = _changeable(donor, membership_id)
    return change_plan(
        donor, membership.id, amount_cents, INTERVAL_FREQUENCY[membership.interval], membership.fund.slug
    )


def update_card(donor: Donor, membership_id: int, card_number: str) -> Membership:
    membership = _changeable(donor, membership_id)
    last4 = local_billing.CARD_LAST4.get(card_number)
    if last4 is None:
        raise ChangeRefused("Use the test card 4242 4242 4242 4242, or 4000 0000 0000 0002 to see renewals decline.")
    local_billing.keep_card(membership.stripe_subscription_id or "", last4)
    return membership


def cancel(donor: Donor, membership_id: int) -> Membership:
    membership = _changeable(donor, membership_id)
    local_billing.cancel(membership)
    return membership


# Changes through the gateway: amount, frequency, fund, pause ------------------------------------

PAUSE_CHOICES = (1, 2, 3)  # installments a member may skip at once


def _manageable(donor: Donor, membership_id: int) -> Membership:
    """The member's membership that the gateway can still change."""
    membership = _own_membership(donor, membership_id)
    if membership.status == MembershipStatus.CANCELED:
        raise ChangeRefused("This membership has ended.")
    if not membership.stripe_subscription_id:
        raise ChangeRefused("This membership cannot be changed online; please write to us.")
    return membership


@dataclass(frozen=True)
class PauseChoice:
    skips: int
    resumes_at: datetime  # collection resumes: the renewal after the skipped ones is charged
    next_charge: datetime  # that renewal


@dataclass(frozen=True)
class ChangePage:
    row: MembershipRow
    frequency: str
    funds: list[Fund]
    pause_supported: bool
    pause_choices: list[PauseChoice]
    pause_refusal: str | None  # why no pause is offered, in words


def pause_choices(membership: Membership) -> list[PauseChoice]:
    """Skip 1-3 installments: the next renewals, from the current period's end."""
    end = membership.current_period_end
    if end is None:
        return []
    anchor = (membership.started_at or end).day
    choices = []
    for skips in PAUSE_CHOICES:
        next_charge = local_billing.shift(end, membership.interval, skips, anchor)
        # A day before that renewal: its invoice, made at the renewal, is collected again.
        choices.append(PauseChoice(skips, next_charge - timedelta(days=1), next_charge))
    return choices


def _pause_refusal(membership: Membership) -> str | None:
    if not get_gateway().supports_pause:
        return "Pausing is not offered with this payment service: you can change the amount or cancel instead."
    if membership.status == MembershipStatus.PAST_DUE:
        return "Your last payment did not go through: please update your card before pausing."
    if membership.cancel_at_period_end:
        return "This membership is set to end with its current period: there is nothing to pause."
    if membership.current_period_end is None:
        return "This membership has no renewal date yet: please try again in a few minutes."
    return None


def change_page(donor: Donor, membership_id: int) -> ChangePage:
    membership = _manageable(donor, membership_id)
    refusal = _pause_refusal(membership)
    return ChangePage(
        row=describe(membership),
        frequency=INTERVAL_FREQUENCY[membership.interval],
        funds=_fund_choices(membership),
        pause_supported=refusal is None,
        pause_choices=pause_choices(membership) if refusal is None and not _is_paused(membership) else [],
        pause_refusal=refusal,
    )


def _fund_choices(membership: Membership) -> list[Fund]:
    """The active funds, and the membership's own even if it has closed (keeping it is no change)."""
    funds = funds_for_choice(active_only=True)
    return funds if membership.fund in funds else [membership.fund, *funds]


def _is_paused(membership: Membership) -> bool:
    return membership.paused_until is not None and membership.paused_until > utcnow()


@dataclass(frozen=True)
class PlanChange:
    """A change the member asked for, checked, to confirm before it is sent."""

    membership: Membership
    amount_cents: int
    frequency: str
    fund: Fund
    before: str  # "$15.00 a month to Community Forums Reporting"
    after: str
    new_frequency: bool


def _plan_words(amount_cents: int, currency: str, frequency: str, fund: Fund) -> str:
    per = "month" if frequency == "monthly" else "year"
    return f"{format_money(amount_cents, currency)} a {per} to {fund.name}"


def check_plan_change(
    donor: Donor, membership_id: int, amount_cents: int, frequency: str, fund_slug: str
) -> PlanChange:
    """The change, checked (amount within the gift page's limits, a known active fund, a
    monthly or annual frequency, something actually different). Writes nothing."""
    membership = _manageable(donor, membership_id)
    try:
        check_amount(amount_cents)
    except AmountOutOfRange as exc:
        raise ChangeRefused(str(exc)) from exc
    if frequency not in FREQUENCY_INTERVAL:
        raise ChangeRefused("Choose monthly or annual.")
    fund = ledger.fund_by_slug(fund_slug)
    if fund is None or (not fund.active and fund.id != membership.fund_id):
        raise ChangeRefused("Choose one of the funds listed.")
    before = _plan_words(
        membership.amount_cents, membership.currency, INTERVAL_FREQUENCY[membership.interval], membership.fund
    )
    after = _plan_words(amount_cents, membership.currency, frequency, fund)
    if before == after:
        raise ChangeRefused("That is your membership as it is: nothing to change.")
    return PlanChange(
        membership=membership,
        amount_cents=amount_cents,
        frequency=frequency,
        fund=fund,
        before=before,
        after=after,
        new_frequency=FREQUENCY_INTERVAL[frequency] != membership.interval,
    )


def change_plan(donor: Donor, membership_id: int, amount_cents: int, frequency: str, fund_slug: str) -> Membership:
    """Send the checked change to the gateway. The ledger records it from the subscription's
    event (at once with the local gateway; with Stripe when its event is applied), and the
    member's confirmation email is queued then. GatewayError reaches the caller."""
    change = check_plan_change(donor, membership_id, amount_cents, frequency, fund_slug)
    update = MembershipUpdate(
        amount_cents=change.amount_cents,
        frequency=change.frequency,
        fund_slug=change.fund.slug,
        description=f"Membership: {change.fund.name}",
    )
    get_gateway().update_membership(change.membership, update)
    return change.membership


def pause(donor: Donor, membership_id: int, skips: int) -> PauseChoice:
    """Skip the next `skips` installments (through the gateway; the pause email is queued when
    the ledger records it)."""
    membership = _manageable(donor, membership_id)
    refusal = _pause_refusal(membership)
    if refusal:
        raise ChangeRefused(refusal)
    choice = next((choice for choice in pause_choices(membership) if choice.skips == skips), None)
    if choice is None:
        raise ChangeRefused("Choose to skip 1, 2 or 3 payments.")
    get_gateway().pause_membership(membership, choice.resumes_at)
    return choice


def resume(donor: Donor, membership_id: int) -> Membership:
    membership = _manageable(donor, membership_id)
    if membership.paused_until is None:
        raise ChangeRefused("This membership is not paused.")
    get_gateway().resume_membership(membership)
    return membership


# The failed-payment email's card link (dunning) -------------------------------------------------


def card_link_membership(token: str) -> Membership:
    """The membership whose card the link fixes, if it still renews. Raises CardLinkExpired,
    CardLinkInvalid, or ChangeRefused when the membership has ended."""
    membership = card_links.read_card_token(token)
    if membership.status == MembershipStatus.CANCELED:
        raise ChangeRefused("This membership has ended: there is no card to update.")
    if not membership.stripe_customer_id:
        raise ChangeRefused("This membership's card cannot be updated online; please write to us.")
    return membership


def is_local(membership: Membership) -> bool:
    return (membership.stripe_subscription_id or "").startswith(local_billing.LOCAL_SUBSCRIPTION_PREFIX)


def card_update_url(membership: Membership, return_url: str) -> str:
    """Stripe's Billing Portal at its card form, for this membership's customer."""
    return get_gateway().card_update_url(membership, return_url)


def update_card_from_link(membership: Membership, card_number: str) -> None:
    """The local gateway's card page behind the link: the card on file for the next attempt."""
    last4 = local_billing.CARD_LAST4.get(card_number)
    if last4 is None:
        raise ChangeRefused("Use the test card 4242 4242 4242 4242, or 4000 0000 0000 0002 to see renewals decline.")
    local_billing.keep_card(membership.stripe_subscription_id or "", last4)
