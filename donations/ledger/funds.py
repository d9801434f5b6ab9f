"""Funds: what a gift is for (a designation or campaign)."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from donations.extensions import db
from donations.ledger.models import Fund

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
RESERVED_SLUGS = {"thanks", "resume"}


class FundError(ValueError):
    pass


def create_fund(
    *,
    slug: str,
    name: str,
    description: str = "",
    goal_cents: int | None = None,
    suggested_amounts: dict[str, list[int]] | None = None,
    is_default: bool = False,
    show_progress: bool = False,
) -> Fund:
    if not SLUG.match(slug) or slug in RESERVED_SLUGS:
        raise FundError("a slug is lowercase letters, digits and dashes, and not 'thanks' or 'resume'")
    if db.session.scalar(select(Fund).where(Fund.slug == slug)):
        raise FundError(f"a fund {slug} already exists")
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
        active=True,
    )
    db.session.add(fund)
    db.session.flush()
    return fund
