"""Building an outbox message into an email. Its rows are loaded by id when it is sent, so the
mail says what the ledger says then, and a template fix applies to mail already queued.

Each kind has a loader (context -> subject and template values) and two templates,
`templates/emails/<kind>.txt` and `.html`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, TypeVar

from babel.dates import format_date
from babel.dates import format_datetime as babel_datetime
from flask import current_app, render_template
from sqlalchemy import func, select

from donations.clock import local_date, newsroom_zone, utcnow
from donations.extensions import db
from donations.forms import source_words
from donations.ledger.funds import Sponsor, sponsor_of
from donations.ledger.memberships import annualized_cents, level_of
from donations.ledger.models import (
    Frequency,
    Fund,
    Gift,
    GiftSource,
    Membership,
    MembershipChange,
    Reversal,
    ReversalKind,
)
from donations.mail.card_links import card_link_path
from donations.mail.models import OutboxMessage
from donations.mail.statements import Statement, StatementError, statement_for
from donations.money import format_money
from donations.newsroom import current_look

LOCALE = "en_US"
T = TypeVar("T")


class MessageDataError(Exception):
    """The message cannot be built (its row is gone, its context is malformed): retrying will
    not help, so the worker parks it for staff."""


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


Loader = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]
_LOADERS: dict[str, Loader] = {}


def loader(kind: str) -> Callable[[Loader], Loader]:
    def register(function: Loader) -> Loader:
        _LOADERS[kind] = function
        return function

    return register


def kinds() -> list[str]:
    return sorted(_LOADERS)


def render(kind: str, context: dict[str, Any]) -> RenderedMail:
    load = _LOADERS.get(kind)
    if load is None:
        raise MessageDataError(f"unknown message kind {kind!r}")
    subject, values = load(context)
    return RenderedMail(
        subject=subject,
        text=render_template(f"emails/{kind}.txt", **values),
        html=render_template(f"emails/{kind}.html", **values),
    )


def message_id_for(message: OutboxMessage) -> str:
    """Stable for the row (resends included), unique across databases by its creation time."""
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost"
    return f"<outbox-{message.id}-{message.created_at:%Y%m%d%H%M%S%f}@{domain}>"


def build_email(message: OutboxMessage) -> EmailMessage:
    rendered = render(message.kind, message.context or {})
    mail = EmailMessage()
    try:
        mail["From"] = current_app.config["MAIL_FROM"]
        mail["To"] = message.to_address
        mail["Reply-To"] = current_app.config["NEWSROOM_CONTACT"]
        mail["Subject"] = rendered.subject
    except ValueError as exc:  # a header that would break the message (a newline, say)
        raise MessageDataError(f"bad header: {exc}") from None
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = message_id_for(message)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    return mail


def public_url(path: str) -> str:
    """An absolute link for mail, which is built outside any request."""
    config = current_app.config
    base = config.get("PUBLIC_URL")
    if not base and config.get("SERVER_NAME"):
        base = f"{config['PREFERRED_URL_SCHEME']}://{config['SERVER_NAME']}"
    return (base or "http://127.0.0.1:5000").rstrip("/") + path


def _id(context: dict[str, Any], key: str) -> int:
    value = context.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageDataError(f"context needs an integer {key}, got {value!r}")
    return value


def _row(model: type[T], row_id: int) -> T:
    row = db.session.get(model, row_id)
    if row is None:
        raise MessageDataError(f"{model.__name__} {row_id} no longer exists")
    return row


def long_date(moment: datetime) -> str:
    """The local date, as 'March 5, 2026'."""
    return format_date(local_date(moment), format="long", locale=LOCALE)


def _payment_method(gift: Gift) -> str | None:
    if gift.card_last4:
        return f"card ending in {gift.card_last4}"
    if gift.source == GiftSource.CHECK:
        return f"check no. {gift.check_number}" if gift.check_number else "check"
    if gift.source == GiftSource.CASH:
        return "cash"
    if gift.source == GiftSource.SPONSOR:
        return f"through {gift.fund.sponsor_name}, the fund's fiscal sponsor"
    return None


def sponsor_facts(sponsor: Sponsor | None) -> dict[str, str] | None:
    """Who received a deductible gift, for the receipt's and the statement's tax wording."""
    if sponsor is None:
        return None
    return {"name": sponsor.name, "ein": sponsor.ein, "wording": sponsor.receipt_wording}


def gift_facts(gift: Gift) -> dict[str, Any]:
    """What every receipt states: amount, local date, fund, card (where known)."""
    if gift.received_at is None:
        raise MessageDataError(f"gift {gift.id} has not been paid")
    tribute = None
    if gift.tribute_name:
        tribute = f"In {'memory' if gift.tribute_kind == 'memory' else 'honor'} of {gift.tribute_name}"
    return {
        "gift_id": gift.id,
        "amount": format_money(gift.amount_cents, gift.currency),
        "fee_covered": format_money(gift.fee_covered_cents, gift.currency) if gift.fee_covered_cents else None,
        "date": long_date(gift.received_at),
        "fund": gift.fund.name,
        "payment_method": _payment_method(gift),
        "organization": gift.organization,
        "tribute": tribute,
        "sponsor": sponsor_facts(sponsor_of(gift.fund)) if gift.tax_deductible else None,
    }


def _interval_word(interval: str) -> str:
    return "monthly" if interval == "month" else "annual"


def membership_facts(membership: Membership) -> dict[str, Any]:
    return {
        "membership_id": membership.id,
        "amount": format_money(membership.amount_cents, membership.currency),
        "annual_amount": format_money(
            annualized_cents(membership.amount_cents, membership.interval), membership.currency
        ),
        "level": level_of(membership),
        "interval_word": _interval_word(membership.interval),
        "per": "month" if membership.interval == "month" else "year",
        "fund": membership.fund.name,
        "started": long_date(membership.started_at) if membership.started_at else None,
        "manage_url": public_url("/membership"),
    }


@loader("gift_receipt")
def _gift_receipt(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    gift = _row(Gift, _id(context, "gift_id"))
    return f"Your receipt: {format_money(gift.amount_cents, gift.currency)}", {
        "donor_name": gift.donor.name,
        "gift": gift_facts(gift),
        "recurring": gift.frequency != Frequency.ONE_TIME,
    }


@loader("installment_receipt")
def _installment_receipt(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    gift = _row(Gift, _id(context, "gift_id"))
    membership = gift.membership
    return f"Your membership receipt: {format_money(gift.amount_cents, gift.currency)}", {
        "donor_name": gift.donor.name,
        "gift": gift_facts(gift),
        "membership": membership_facts(membership) if membership else None,
        "manage_url": public_url("/membership"),
    }


@loader("membership_welcome")
def _membership_welcome(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    membership = _row(Membership, _id(context, "membership_id"))
    return f"Welcome, member of {current_look().name}", {
        "donor_name": membership.donor.name,
        "membership": membership_facts(membership),
    }


@loader("payment_failed")
def _payment_failed(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    membership = _row(Membership, _id(context, "membership_id"))
    return "We could not renew your membership: please update your card", {
        "donor_name": membership.donor.name,
        "membership": membership_facts(membership),
        # Built when sent: a resent message carries a fresh link.
        "card_url": public_url(card_link_path(membership)),
        "card_days": int(current_app.config["CARD_LINK_MAX_AGE"]) // 86_400,
    }


def _per(interval: str | None) -> str:
    return "year" if interval == "year" else "month"


@loader("membership_changed")
def _membership_changed(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    membership = _row(Membership, _id(context, "membership_id"))
    change = _row(MembershipChange, _id(context, "change_id"))
    if change.membership_id != membership.id:
        raise MessageDataError(f"change {change.id} is not of membership {membership.id}")
    facts = membership_facts(membership)
    # The change's own before and after (later changes have their own mail).
    old_per, new_per = (
        _per(change.old_interval or membership.interval),
        _per(change.new_interval or membership.interval),
    )
    new_amount = format_money(change.new_amount_cents, membership.currency)
    old_fund = db.session.get(Fund, change.old_fund_id) if change.old_fund_id else None
    new_fund = db.session.get(Fund, change.new_fund_id) if change.new_fund_id else membership.fund
    fund_changed = old_fund is not None and new_fund is not None and old_fund.id != new_fund.id
    plan_changed = change.old_amount_cents != change.new_amount_cents or old_per != new_per
    if plan_changed:
        subject = f"Your membership changed to {new_amount} a {new_per}"
    else:
        subject = f"Your membership now supports {new_fund.name if new_fund else facts['fund']}"
    return subject, {
        "donor_name": membership.donor.name,
        "membership": facts,
        "old_amount": format_money(change.old_amount_cents, membership.currency),
        "new_amount": new_amount,
        "old_per": old_per,
        "new_per": new_per,
        "plan_changed": plan_changed,
        "fund": new_fund.name if new_fund else facts["fund"],
        "old_fund": old_fund.name if fund_changed and old_fund else None,
        "changed_on": long_date(change.changed_at),
        "renews_on": long_date(membership.current_period_end) if membership.current_period_end else None,
    }


def _iso(context: dict[str, Any], key: str) -> datetime:
    value = context.get(key)
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise MessageDataError(f"context needs an ISO time {key}, got {value!r}")
    return moment


@loader("membership_paused")
def _membership_paused(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    membership = _row(Membership, _id(context, "membership_id"))
    until = _iso(context, "paused_until_iso")
    indefinite = until.year >= 9999
    return "Your membership is paused", {
        "donor_name": membership.donor.name,
        "membership": membership_facts(membership),
        # Installments due before this are skipped; the next one is charged on the renewal after it.
        "resumes_on": None if indefinite else long_date(until),
    }


@loader("membership_resumed")
def _membership_resumed(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    membership = _row(Membership, _id(context, "membership_id"))
    return "Your membership is active again", {
        "donor_name": membership.donor.name,
        "membership": membership_facts(membership),
        "renews_on": long_date(membership.current_period_end) if membership.current_period_end else None,
    }


@loader("renewal_reminder")
def _renewal_reminder(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    membership = _row(Membership, _id(context, "membership_id"))
    facts = membership_facts(membership)
    renews_on = long_date(_iso(context, "renews_at_iso"))
    return f"Your annual membership renews on {renews_on}", {
        "donor_name": membership.donor.name,
        "membership": facts,
        "renews_on": renews_on,
    }


@loader("membership_canceled")
def _membership_canceled(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    membership = _row(Membership, _id(context, "membership_id"))
    ends = membership.current_period_end if membership.cancel_at_period_end else membership.canceled_at
    return "Your membership is canceled", {
        "donor_name": membership.donor.name,
        "membership": membership_facts(membership),
        "ends": long_date(ends) if ends else None,
        "at_period_end": membership.cancel_at_period_end and membership.canceled_at is None,
    }


@loader("refund_confirmed")
def _refund_confirmed(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    reversal = _row(Reversal, _id(context, "reversal_id"))
    if reversal.kind != ReversalKind.REFUND or reversal.amount_cents <= 0:
        raise MessageDataError(f"reversal {reversal.id} is not a refund")
    gift = reversal.gift
    refunded_so_far = db.session.execute(
        select(func.coalesce(func.sum(Reversal.amount_cents), 0)).where(Reversal.gift_id == gift.id)
    ).scalar_one()
    return f"Your refund of {format_money(reversal.amount_cents, gift.currency)}", {
        "donor_name": gift.donor.name,
        "gift": gift_facts(gift),
        "refund_amount": format_money(reversal.amount_cents, gift.currency),
        "refund_date": long_date(reversal.reversed_at),
        "full_refund": refunded_so_far >= gift.amount_cents,
        "kept": format_money(max(gift.amount_cents - refunded_so_far, 0), gift.currency),
    }


@loader("magic_link")
def _magic_link(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    url, expires = context.get("url"), context.get("expires_at_iso")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise MessageDataError("magic_link needs an absolute http(s) url")
    try:
        expires_at = datetime.fromisoformat(str(expires))
    except ValueError:
        raise MessageDataError(f"magic_link has a bad expires_at_iso {expires!r}") from None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return f"Your link to manage your gifts to {current_look().name}", {
        "url": url,
        "expires": babel_datetime(expires_at, "MMMM d, y 'at' h:mm a zzz", tzinfo=newsroom_zone(), locale=LOCALE),
    }


def statement_values(statement: Statement) -> dict[str, Any]:
    """Template values shared by the statement email and the staff's printable page."""
    currency = statement.currency
    sponsors = {g.sponsor for g in statement.gifts if g.sponsor is not None}
    return {
        "statement": statement,
        # Each sponsor that received a deductible gift, and whether any gift was the newsroom's.
        "sponsors": [sponsor_facts(sponsor) for sponsor in sorted(sponsors, key=lambda s: s.name)],
        "any_not_deductible": any(g.sponsor is None for g in statement.gifts) or not statement.gifts,
        "gifts": [
            {
                "gift_id": g.gift_id,
                "date": format_date(g.received_on, format="medium", locale=LOCALE),
                "fund": g.fund_name,
                "amount": format_money(g.amount_cents, g.currency),
                "kind": ("membership" if g.frequency != Frequency.ONE_TIME else "one-time gift")
                # The organization is the gift's, never the person's: say it on that line only.
                + (f" on behalf of {g.organization}" if g.organization else ""),
                "method": "card ending in " + g.card_last4 if g.card_last4 else source_words(g.source),
                "deductible": f"tax deductible, received by {g.sponsor.name}" if g.sponsor else None,
            }
            for g in statement.gifts
        ],
        "reversals": [
            {
                "gift_id": r.gift_id,
                "date": format_date(r.reversed_on, format="medium", locale=LOCALE),
                "what": _reversal_words(r.kind),
                "gift_date": format_date(r.gift_received_on, format="medium", locale=LOCALE)
                if r.gift_received_on
                else "",
                "fund": r.fund_name,
                "amount": format_money(-r.amount_cents, r.currency),
            }
            for r in statement.reversals
        ],
        "gifts_total": format_money(statement.gifts_total_cents, currency),
        "reversals_total": format_money(-statement.reversals_total_cents, currency),
        "net_total": format_money(statement.net_cents, currency),
        "generated_on": long_date(statement.generated_at),
    }


def _reversal_words(kind: str) -> str:
    words: dict[str, str] = {
        ReversalKind.REFUND: "Refund",
        ReversalKind.REFUND_FAILED: "Refund reversed",
        ReversalKind.DISPUTE_LOST: "Card dispute",
        ReversalKind.DISPUTE_WON: "Card dispute won",
    }
    return words.get(kind, kind)


@loader("annual_statement")
def _annual_statement(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        statement = statement_for(_id(context, "donor_id"), _id(context, "year"))
    except StatementError as exc:
        raise MessageDataError(str(exc)) from None
    return f"Your {statement.year} giving statement from {current_look().name}", {
        "donor_name": statement.donor_name,
        **statement_values(statement),
    }
