"""GET/POST /give and /give/<fund-slug>, and the thank-you page. Thin: validate, call, redirect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, URLSafeSerializer

from donations import newsroom
from donations.clock import utcnow
from donations.extensions import db
from donations.giving import arrival, service
from donations.giving.forms import GiftForm
from donations.giving.page_cache import cached_gift_page
from donations.ledger import funds, memberships
from donations.ledger import service as ledger
from donations.ledger.models import RECEIVED_STATUSES, UNPAID_STATUSES, Frequency, Fund, Gift, GiftStatus
from donations.mail.render import public_url
from donations.payments import events
from donations.payments.gateway import GatewayError
from donations.protection import card_testing as protection

bp = Blueprint("giving", __name__)

ATTRIBUTION_KEYS = arrival.ATTRIBUTION_KEYS


def _resume_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="resume-gift")


def enabled_frequencies() -> list[str]:
    return current_app.config.get("GIFT_FREQUENCIES", ["one_time"])


def _fund_or_404(slug: str | None) -> Fund:
    if slug is None:
        try:
            return ledger.default_fund()
        except ledger.LedgerError:
            abort(404)
    fund = ledger.fund_by_slug(slug)
    # A sponsor-held fund's gifts go to its fiscal sponsor, never through this site's checkout.
    if fund is None or not fund.active or fund.sponsor_held:
        abort(404)
    return fund


def _prefill_from(token: str) -> dict[str, Any]:
    """A cancelled checkout returns to the form as the reader left it."""
    try:
        gift_id = _resume_serializer().loads(token)
    except BadSignature:
        return {}
    gift = db.session.get(Gift, gift_id)
    if gift is None or gift.status not in UNPAID_STATUSES:
        return {}
    base = gift.amount_cents - gift.fee_covered_cents
    return {
        "frequency": gift.frequency,
        "amount_choice": "other",
        "custom_amount": f"{base // 100}.{base % 100:02d}",
        "cover_fee": gift.fee_covered_cents > 0,
        "name": gift.donor.name,
        "email": gift.donor.email,
        "postal_code": gift.donor.postal_code,
        "on_behalf_of_organization": bool(gift.organization),
        "organization": gift.organization,
        "anonymous": gift.anonymous,
        "tribute_kind": gift.tribute_kind or "",
        "tribute_name": gift.tribute_name,
    }


@bp.route("/give", methods=["GET", "POST"])
@bp.route("/give/<fund_slug>", methods=["GET", "POST"])
@cached_gift_page
def give(fund_slug: str | None = None) -> ResponseReturnValue:
    fund = _fund_or_404(fund_slug)
    suggested = funds.suggested_amounts(fund)
    prefill = _prefill_from(request.args["resume"]) if request.method == "GET" and "resume" in request.args else {}
    frequencies = enabled_frequencies()
    form = GiftForm(suggested, frequencies, data=prefill or None)
    # Suggestions follow the chosen frequency (?frequency=monthly, or what was posted).
    selected = form.frequency.data if request.method == "POST" or prefill else request.args.get("frequency")
    default = fund.default_frequency if fund.default_frequency in frequencies else frequencies[0]
    selected = selected if selected in frequencies else default
    if request.method == "GET" and not prefill:
        form.frequency.data = selected
        first = suggested.get(selected) or [2500]
        form.amount_choice.data = str(first[min(1, len(first) - 1)])
        # A link that prefills (?amount=25): a valid amount is chosen, anything else ignored.
        linked = arrival.linked_amount(request.args.get("amount"))
        if linked is not None:
            if linked in first:
                form.amount_choice.data = str(linked)
            else:
                form.amount_choice.data = "other"
                form.custom_amount.data = arrival.dollars_text(linked)
    newsletter = newsroom.newsletter_wording(fund.newsletter_offer, fund.newsletter_wording)
    status = 200
    too_many = ""  # the rate limit's refusal, in words
    if form.validate_on_submit():
        if form.website.data:
            # The honeypot was filled in: a bot. Answer as if all were well, record nothing.
            return redirect(url_for("giving.give", fund_slug=fund_slug))
        assert form.amount_cents is not None
        wait = protection.spend_checkout()  # counted only now: a form refused for a typo is free
        if not wait:
            try:
                intent = _intent(form, fund, newsletter)
                url = service.begin_checkout(intent, _success_url(), _cancel_url_for(fund_slug))
            except GatewayError:  # the amount's limits were checked by the form
                return render_template("giving/retry.html", fund=fund), 503
            else:
                return redirect(url, code=303)
        status, too_many = 429, protection.too_many_message(wait, "No payment was started.")
    elif request.method == "POST":
        status = 400
    chosen = form.amount_choice.data or ""
    amount_for_fee = form.amount_cents or form.suggested_cents() or 2500
    page = render_template(
        "giving/give.html",
        form=form,
        fund=fund,
        fee_example=service.fee_for(amount_for_fee),
        amount_for_fee=amount_for_fee,
        minimum=current_app.config["GIFT_MINIMUM_CENTS"],
        maximum=current_app.config["GIFT_MAXIMUM_CENTS"],
        selected_frequency=selected,
        shown_amounts={str(cents) for cents in suggested.get(selected, [])} | {chosen},
        amount_frequencies=_amount_frequencies(suggested, frequencies),
        amount_notes={str(cents): note for cents, note in (fund.amount_notes or {}).items()},
        monthly_prompt=fund.monthly_prompt if "monthly" in frequencies else "",
        share_url=public_url(url_for("giving.give", fund_slug=fund.slug)),
        too_many=too_many,
        newsletter=newsletter,
    )
    if too_many:
        return page, status, {"Retry-After": str(wait)}
    return page, status  # the page cache stores (page, 200) answers


@bp.before_app_request
def _remember_arrival() -> None:
    """The article (or other page) a reader came from, kept in their session until they give:
    the gift page's own form posts carry only our own address as their referrer."""
    if request.endpoint == "giving.give" and request.method == "GET":
        arrival.remember(request.referrer, request.host, session)


def _amount_frequencies(suggested: dict[str, list[int]], frequencies: list[str]) -> dict[str, list[str]]:
    """For each offered amount, the frequencies that suggest it (forms.js shows the chosen one's)."""
    found: dict[str, list[str]] = {}
    for frequency in frequencies:
        for cents in suggested.get(frequency, []):
            found.setdefault(str(cents), []).append(frequency)
    return found


def _intent(form: GiftForm, fund: Fund, newsletter: str) -> service.GiftIntent:
    organization = (form.organization.data or "").strip() if form.on_behalf_of_organization.data else ""
    attribution = arrival.attribution(request.args, request.referrer, request.host, session)
    return service.GiftIntent(
        fund=fund,
        base_amount_cents=form.amount_cents or 0,
        cover_fee=bool(form.cover_fee.data),
        frequency=form.frequency.data,
        name=form.name.data.strip(),
        email=form.email.data.strip(),
        postal_code=(form.postal_code.data or "").strip() or None,
        organization=organization or None,
        anonymous=bool(form.anonymous.data),
        tribute_kind=form.tribute_kind.data or None,
        tribute_name=(form.tribute_name.data or "").strip() or None if form.tribute_kind.data else None,
        attribution=attribution,
        # The words the page showed beside the box (the same settings rendered it).
        newsletter_wording=newsletter if newsletter and form.newsletter.data else None,
    )


# Where Stripe sends the reader back: on PUBLIC_URL, as links in mail are, never on the Host
# header, which whoever sends the request chooses.


def _success_url() -> str:
    # Stripe substitutes the session id; the local gateway redirects with it itself.
    return public_url(url_for("giving.thanks")) + "?session_id={CHECKOUT_SESSION_ID}"


def _cancel_url_for(fund_slug: str | None) -> Callable[[Gift], str]:
    def cancel_url(gift: Gift) -> str:
        token = _resume_serializer().dumps(gift.id)
        return public_url(url_for("giving.give", fund_slug=fund_slug, resume=token))

    return cancel_url


# How often the thank-you page reloads while the payment is being confirmed, and for how long
# after the checkout started (a bank payment can take days: its receipt says so by email).
THANKS_REFRESH_SECONDS = 3
THANKS_REFRESH_FOR = timedelta(minutes=30)


@bp.get("/give/thanks")
def thanks() -> ResponseReturnValue:
    session_id = request.args.get("session_id", "")
    gift = ledger.gift_for_session(session_id) if session_id else None
    if gift is None:
        abort(404)
    paid = gift.status in RECEIVED_STATUSES
    if gift.status == GiftStatus.EXPIRED:  # (a failed one may yet be paid with another card)
        return render_template("giving/expired.html", gift=gift)
    # Stripe's event may be stored and waiting for the worker, or not sent yet: the page says
    # so and reloads itself (a meta refresh, no script) for a while, until the gift shows.
    processing = not paid and bool(events.waiting_objects([session_id]))
    refresh = not paid and utcnow() - gift.created_at < THANKS_REFRESH_FOR
    context = {
        "gift": gift,
        "paid": paid,
        "processing": processing,
        "refresh_seconds": THANKS_REFRESH_SECONDS if refresh else None,
        "share_url": public_url(url_for("giving.give", fund_slug=gift.fund.slug)),
    }
    if gift.frequency != Frequency.ONE_TIME:
        level = memberships.level_for_gift(gift)
        return render_template("giving/membership_thanks.html", level=level, **context)
    return render_template("giving/thanks.html", **context)


@bp.get("/newsroom/logo")
def logo() -> ResponseReturnValue:
    """The newsroom's logo, from our own origin. Its address carries a digest of its bytes (?v=),
    so it may be cached for good; a new logo has a new address."""
    found = newsroom.logo()
    if found is None:
        abort(404)
    data, media_type = found
    return data, 200, {"Content-Type": media_type, "Cache-Control": "public, max-age=31536000, immutable"}


@bp.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("giving.give"))
