"""The campaigns report: which campaigns, sources, media, links and articles bring gifts.

Every checkout opened on the gift page keeps where its reader came from (`gifts.attribution`:
`utm_*`, `ref`, the referring page). For local dates first..last, by the day each checkout was
opened, the report counts per (campaign, source, medium, content, referring article): the
checkouts opened, the gifts paid of them, their donors and dollars (gross, before refunds), and
the conversion in words. Beside it, each fund's embed box: its views (counted per day and fund,
nothing personal) and the gifts whose checkout came through it (`utm_medium=embed`).

It lives in giving, beside the embed whose views it reads (giving and staff are sibling layers);
its files are the staff lists' (grants/downloads.py). Gifts are grouped in Python: attribution is
JSON, which SQLite and PostgreSQL query differently, and a period's checkouts are few.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from donations.clock import local_day_bounds
from donations.extensions import db
from donations.giving.embed import views_by_day_and_fund
from donations.grants.reports import Cell, Money, Report
from donations.ledger.models import RECEIVED_STATUSES, Fund, Gift

COLUMNS = (
    "Campaign",
    "Source",
    "Medium",
    "Content",
    "Referring article",
    "Checkouts opened",
    "Gifts paid",
    "Donors",
    "Given",
    "Embed views",
    "Conversion",
)
NONE = "Not given"
MAX_DAYS = 3 * 366  # a bounded read: at most three years at once


class CampaignsError(ValueError):
    """Bad dates: a 400 with this message."""


@dataclass
class Tally:
    opened: int = 0
    paid: int = 0
    given_cents: int = 0
    donors: set[int] = field(default_factory=set)

    def add(self, status: str, amount_cents: int, donor_id: int) -> None:
        self.opened += 1
        if status in RECEIVED_STATUSES:
            self.paid += 1
            self.given_cents += amount_cents
            self.donors.add(donor_id)


@dataclass(frozen=True)
class Line:
    campaign: str
    source: str
    medium: str
    content: str
    article: str
    tally: Tally


@dataclass(frozen=True)
class EmbedLine:
    fund: str
    views: int
    tally: Tally


@dataclass(frozen=True)
class Campaigns:
    first: date
    last: date
    lines: list[Line]
    embeds: list[EmbedLine]


def in_words(paid: int, opened: int) -> str:
    """ "3 of 12 checkouts paid (25%)": the conversion as staff read it."""
    if opened == 0:
        return "no checkouts opened"
    noun = "checkout" if opened == 1 else "checkouts"
    return f"{paid} of {opened} {noun} paid ({paid * 100 / opened:.0f}%)"


def views_in_words(paid: int, views: int) -> str:
    """ "4 gifts from 1,200 views (0.33%)"."""
    if views == 0:
        return "no views counted"
    noun = "gift" if paid == 1 else "gifts"
    view_noun = "view" if views == 1 else "views"
    return f"{paid} {noun} from {views:,} {view_noun} ({paid * 100 / views:.2f}%)"


def check_dates(first: date, last: date) -> None:
    if last < first:
        raise CampaignsError("The last day comes before the first day.")
    if (last - first).days >= MAX_DAYS:
        raise CampaignsError("Choose at most three years at a time.")


def campaigns(first: date, last: date) -> Campaigns:
    check_dates(first, last)
    start, end = local_day_bounds(first, last)
    gifts = db.session.execute(
        select(Gift.status, Gift.amount_cents, Gift.donor_id, Gift.fund_id, Gift.attribution)
        .where(Gift.stripe_checkout_session_id.is_not(None), Gift.created_at >= start, Gift.created_at < end)
        .execution_options(yield_per=1000)
    )
    lines: dict[tuple[str, str, str, str, str], Tally] = {}
    through_embed: dict[int, Tally] = {}
    for gift in gifts:
        found = gift.attribution or {}
        key = (
            found.get("utm_campaign") or NONE,
            found.get("utm_source") or NONE,
            found.get("utm_medium") or NONE,
            found.get("utm_content") or NONE,
            found.get("ref") or found.get("referrer") or NONE,
        )
        lines.setdefault(key, Tally()).add(gift.status, gift.amount_cents, gift.donor_id)
        if found.get("utm_medium") == "embed":
            through_embed.setdefault(gift.fund_id, Tally()).add(gift.status, gift.amount_cents, gift.donor_id)
    views: dict[int, int] = {}
    for _day, fund_id, count in views_by_day_and_fund(first, last):
        views[fund_id] = views.get(fund_id, 0) + count
    names: dict[int, str] = dict(db.session.execute(select(Fund.id, Fund.name)).all())
    embeds = [
        EmbedLine(names.get(fund_id, str(fund_id)), views.get(fund_id, 0), through_embed.get(fund_id, Tally()))
        for fund_id in sorted(set(views) | set(through_embed), key=lambda fund_id: names.get(fund_id, ""))
    ]
    ordered = sorted(lines.items(), key=lambda item: (-item[1].given_cents, -item[1].opened, item[0]))
    return Campaigns(first, last, [Line(*key, tally) for key, tally in ordered], embeds)


def _rows(found: Campaigns) -> Iterator[tuple[Cell, ...]]:
    for line in found.lines:
        tally = line.tally
        yield (
            line.campaign,
            line.source,
            line.medium,
            line.content,
            line.article,
            tally.opened,
            tally.paid,
            len(tally.donors),
            Money(tally.given_cents),
            None,
            in_words(tally.paid, tally.opened),
        )
    for embed in found.embeds:  # then each fund's embed box, all its articles together
        tally = embed.tally
        yield (
            f"Embed box of {embed.fund}",
            "",
            "embed",
            "",
            "",
            tally.opened,
            tally.paid,
            len(tally.donors),
            Money(tally.given_cents),
            embed.views,
            views_in_words(tally.paid, embed.views),
        )


def report(found: Campaigns) -> Report:
    """The lines as a file, then a line per fund's embed box (conversion: gifts per view)."""
    note = (
        f"Checkouts opened on the gift page from {found.first.isoformat()} to {found.last.isoformat()} "
        "(local dates), by the day each was opened; given is gross, before any refund."
    )
    return Report(kind="campaigns", title="Campaigns", columns=COLUMNS, rows=_rows(found), notes=(note,))
