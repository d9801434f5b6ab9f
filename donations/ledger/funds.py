"""Funds: what a gift is for (a designation or campaign)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update

from donations.extensions import db
from donations.ledger.currency import counted_gift
from donations.ledger.models import Fund, Gift, Reversal
from donations.ttl_cache import TtlCache

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
RESERVED_SLUGS = {"thanks", "resume"}
EIN = re.compile(r"^\d{2}-\d{7}$")
# What the gift page suggests for a frequency the fund's settings leave out.
DEFAULT_SUGGESTED = {
    "one_time": [2500, 5000, 10000, 25000],
    "monthly": [500, 1000, 2500],
    "annual": [6000, 12000, 25000],
}


class FundError(ValueError):
    pass


@dataclass(frozen=True)
class Sponsor:
    """The fiscal sponsor that holds a fund: it receives the fund's gifts, which are deductible."""

    name: str
    ein: str  # 12-3456789
    receipt_wording: str = ""


def _check_sponsor(sponsor: Sponsor | None, *, is_default: bool) -> None:
    if sponsor is None:
        return
    if not sponsor.name.strip():
        raise FundError("name the fiscal sponsor that holds the fund")
    if not EIN.match(sponsor.ein):
        raise FundError("the sponsor's EIN is two digits, a dash and seven digits, like 12-3456789")
    if is_default:
        raise FundError("the default fund takes gifts online: it cannot be held by a fiscal sponsor")


def _apply_sponsor(fund: Fund, sponsor: Sponsor | None) -> None:
    fund.sponsor_held = sponsor is not None
    fund.sponsor_name = sponsor.name.strip() if sponsor else None
    fund.sponsor_ein = sponsor.ein if sponsor else None
    fund.sponsor_receipt_wording = sponsor.receipt_wording.strip() if sponsor else ""


def sponsor_of(fund: Fund) -> Sponsor | None:
    if not fund.sponsor_held or fund.sponsor_name is None or fund.sponsor_ein is None:
        return None
    return Sponsor(fund.sponsor_name, fund.sponsor_ein, fund.sponsor_receipt_wording or "")


def create_fund(
    *,
    slug: str,
    name: str,
    description: str = "",
    goal_cents: int | None = None,
    suggested_amounts: dict[str, list[int]] | None = None,
    is_default: bool = False,
    show_progress: bool = False,
    active: bool = True,
    default_frequency: str | None = None,
    amount_notes: dict[str, str] | None = None,
    monthly_prompt: str = "",
    newsletter_offer: str = "",
    newsletter_wording: str = "",
    sponsor: Sponsor | None = None,
) -> Fund:
    if not SLUG.match(slug) or slug in RESERVED_SLUGS:
        raise FundError("a slug is lowercase letters, digits and dashes, and not 'thanks' or 'resume'")
    if db.session.scalar(select(Fund).where(Fund.slug == slug)):
        raise FundError(f"a fund {slug} already exists")
    _check_sponsor(sponsor, is_default=is_default)
    if is_default:
        db.session.execute(update(Fund).values(is_default=False))
    fund = Fund(
        slug=slug,
        name=name,
        description=description,
        goal_cents=goal_cents,
        suggested_amounts=suggested_amounts or {},
        is_default=is_default,
        show_progress=show_progress,
        active=active,
        default_frequency=default_frequency,
        amount_notes=amount_notes or {},
        monthly_prompt=monthly_prompt,
        newsletter_offer=newsletter_offer,
        newsletter_wording=newsletter_wording,
    )
    _apply_sponsor(fund, sponsor)
    db.session.add(fund)
    db.session.flush()
    return fund


def update_fund(
    fund: Fund,
    *,
    slug: str,
    name: str,
    description: str,
    goal_cents: int | None,
    suggested_amounts: dict[str, list[int]],
    active: bool,
    is_default: bool,
    show_progress: bool,
    default_frequency: str | None = None,
    amount_notes: dict[str, str] | None = None,
    monthly_prompt: str = "",
    newsletter_offer: str = "",
    newsletter_wording: str = "",
    sponsor: Sponsor | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Change a fund's settings; returns (before, after) for the audit log."""
    if not SLUG.match(slug) or slug in RESERVED_SLUGS:
        raise FundError("a slug is lowercase letters, digits and dashes, and not 'thanks' or 'resume'")
    if slug != fund.slug and db.session.scalar(select(Fund).where(Fund.slug == slug)):
        raise FundError(f"a fund {slug} already exists")
    if goal_cents is not None and goal_cents <= 0:
        raise FundError("a goal must be more than zero")
    if is_default and not active:
        raise FundError("the default fund must be active")
    _check_sponsor(sponsor, is_default=is_default)
    if (sponsor is not None) != fund.sponsor_held and db.session.scalar(
        select(Gift.id).where(Gift.fund_id == fund.id).limit(1)
    ):
        # The gifts were received under the old status (by the newsroom, or by the sponsor).
        raise FundError("this fund has gifts: its tax status cannot change (make a new fund for the other status)")
    before = fund_settings(fund)
    if is_default and not fund.is_default:
        db.session.execute(update(Fund).where(Fund.id != fund.id).values(is_default=False))
    fund.slug = slug
    fund.name = name
    fund.description = description
    fund.goal_cents = goal_cents
    fund.suggested_amounts = suggested_amounts
    fund.active = active
    fund.is_default = is_default
    fund.show_progress = show_progress
    fund.default_frequency = default_frequency
    fund.amount_notes = amount_notes or {}
    fund.monthly_prompt = monthly_prompt
    fund.newsletter_offer = newsletter_offer
    fund.newsletter_wording = newsletter_wording
    _apply_sponsor(fund, sponsor)
    db.session.flush()
    return before, fund_settings(fund)


def fund_settings(fund: Fund) -> dict[str, Any]:
    return {
        "slug": fund.slug,
        "name": fund.name,
        "description": fund.description,
        "goal_cents": fund.goal_cents,
        "suggested_amounts": dict(fund.suggested_amounts or {}),
        "active": fund.active,
        "is_default": fund.is_default,
        "show_progress": fund.show_progress,
        "default_frequency": fund.default_frequency,
        "amount_notes": dict(fund.amount_notes or {}),
        "monthly_prompt": fund.monthly_prompt or "",
        "newsletter_offer": fund.newsletter_offer or "",
        "newsletter_wording": fund.newsletter_wording or "",
        "sponsor_held": fund.sponsor_held,
        "sponsor_name": fund.sponsor_name,
        "sponsor_ein": fund.sponsor_ein,
        "sponsor_receipt_wording": fund.sponsor_receipt_wording or "",
    }


def raised_by_fund(fund_ids: list[int] | None = None) -> dict[int, int]:
    """Money received per fund, net of reversals (refunds, lost disputes), summed by the database."""
    gifts = (
        select(Gift.fund_id, func.sum(Gift.amount_cents).label("cents")).where(counted_gift()).group_by(Gift.fund_id)
    )
    reversed_ = (
        select(Gift.fund_id, func.sum(Reversal.amount_cents).label("cents"))
        .join(Gift, Gift.id == Reversal.gift_id)
        .where(counted_gift())
        .group_by(Gift.fund_id)
    )
    if fund_ids is not None:
        gifts = gifts.where(Gift.fund_id.in_(fund_ids))
        reversed_ = reversed_.where(Gift.fund_id.in_(fund_ids))
    raised = {fund_id: int(cents) for fund_id, cents in db.session.execute(gifts)}
    for fund_id, cents in db.session.execute(reversed_):
        raised[fund_id] = raised.get(fund_id, 0) - int(cents)
    return raised


@dataclass(frozen=True)
class FundProgress:
    raised_cents: int
    goal_cents: int

    @property
    def percent(self) -> int:
        """Whole percent of the goal reached, capped at 100 for the bar."""
        return min(100, self.raised_cents * 100 // self.goal_cents) if self.goal_cents > 0 else 0


_raised_cache: TtlCache[int, int] = TtlCache()  # by fund id


def fund_progress(fund: Fund) -> FundProgress | None:
    """The public progress bar's numbers, or None when the fund shows no bar. The sum is cached
    for FUND_PROGRESS_CACHE_SECONDS: the gift page must stay fast with a million gifts."""
    if not (fund.show_progress and fund.goal_cents):
        return None
    ttl = float(current_app.config.get("FUND_PROGRESS_CACHE_SECONDS", 60))
    raised = _raised_cache.get_or_compute(fund.id, ttl, lambda: raised_by_fund([fund.id]).get(fund.id, 0))
    return FundProgress(raised_cents=max(raised, 0), goal_cents=fund.goal_cents)


def funds_for_choice(*, active_only: bool = False, online_only: bool = False) -> list[Fund]:
    """online_only: the funds a reader can give to online (a sponsor-held fund's money goes to
    its sponsor, never through the newsroom's Stripe account)."""
    statement = select(Fund).order_by(Fund.active.desc(), Fund.name)
    if active_only:
        statement = statement.where(Fund.active.is_(True))
    if online_only:
        statement = statement.where(Fund.sponsor_held.is_(False))
    return list(db.session.scalars(statement))


def suggested_amounts(fund: Fund) -> dict[str, list[int]]:
    """The amounts (cents) the gift page offers per frequency: the fund's own, else the defaults.
    Stripe set-up makes a price for each, so the two never disagree."""
    return {**DEFAULT_SUGGESTED, **(fund.suggested_amounts or {})}
