"""`/embed/<fund-slug>`: a compact gift box for an article page's <iframe>.

It sets no cookie (no session, no CSRF: its form is a plain GET) and loads only its own small
stylesheet. Give opens the full gift page in a new top-level tab (Stripe Checkout cannot run in
a frame), prefilled with the amount and frequency, `utm_medium=embed` and the article's address
(`ref`, from the Referer the article's browser sent for the frame). Only origins in
EMBED_ORIGINS may frame it (CSP frame-ancestors on this route alone, see security.py). Each view
adds one to a count per day and fund (giving/models.py), nothing personal.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite

from donations.clock import local_date, utcnow
from donations.extensions import db, unit_of_work
from donations.giving.arrival import ATTRIBUTION_KEYS
from donations.giving.forms import FREQUENCY_LABELS
from donations.giving.models import EmbedView
from donations.ledger import service as ledger
from donations.ledger.models import Fund
from donations.mail.render import public_url
from donations.money import format_dollars

bp = Blueprint("embed", __name__)

DEFAULT_AMOUNTS = {"one_time": [2500, 5000, 10000], "monthly": [500, 1000, 2500], "annual": [6000, 12000, 25000]}
BOX_AMOUNTS = 3


def parse_origins(value: Any) -> list[str]:
    """EMBED_ORIGINS ("https://news.example.org, https://www.example.org") as a list of origins;
    anything that is not an http(s) origin (a path, a wildcard) is left out."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    origins = []
    for item in items:
        parts = urlsplit(str(item).strip())
        if parts.scheme in ("http", "https") and parts.netloc and "*" not in parts.netloc and parts.path in ("", "/"):
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


def _fund(slug: str) -> Fund:
    fund = ledger.fund_by_slug(slug)
    # A sponsor-held fund's gifts go to its fiscal sponsor, never through this site's checkout.
    if fund is None or not fund.active or fund.sponsor_held:
        abort(404)
    return fund


def _count_view(fund: Fund) -> None:
    """One more view today for this fund: one upsert, safe when many views come at once."""
    table = EmbedView.__table__
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    day = local_date(utcnow())
    with unit_of_work():
        db.session.execute(
            insert(table)
            .values(day=day, fund_id=fund.id, views=1)
            .on_conflict_do_update(index_elements=["day", "fund_id"], set_={"views": table.c.views + 1})
        )


def views_by_day_and_fund(first: Any, last: Any) -> list[tuple[Any, int, int]]:
    """(day, fund id, views) for days first..last (local dates), for the campaigns report."""
    rows = db.session.execute(
        db.select(EmbedView.day, EmbedView.fund_id, func.sum(EmbedView.views))
        .where(EmbedView.day >= first, EmbedView.day <= last)
        .group_by(EmbedView.day, EmbedView.fund_id)
        .order_by(EmbedView.day, EmbedView.fund_id)
    )
    return [(day, fund_id, int(views)) for day, fund_id, views in rows]


def box_amounts(fund: Fund) -> dict[str, list[int]]:
    frequencies = current_app.config.get("GIFT_FREQUENCIES", ["one_time"])
    suggested = {**DEFAULT_AMOUNTS, **(fund.suggested_amounts or {})}
    return {f: suggested.get(f, [])[:BOX_AMOUNTS] for f in frequencies if suggested.get(f)}


@bp.get("/embed/<fund_slug>")
def box(fund_slug: str) -> ResponseReturnValue:
    fund = _fund(fund_slug)
    _count_view(fund)
    amounts = box_amounts(fund)
    frequencies = list(amounts)
    default = fund.default_frequency if fund.default_frequency in frequencies else frequencies[0]
    article = request.referrer if request.referrer and urlsplit(request.referrer).netloc != request.host else ""
    carried = {key: request.args[key][:200] for key in ATTRIBUTION_KEYS if request.args.get(key)}
    carried.setdefault("utm_medium", "embed")
    if article:
        carried["ref"] = article[:500]
    page = render_template(
        "giving/embed.html",
        fund=fund,
        amounts=amounts[default],
        frequencies=[(f, FREQUENCY_LABELS[f]) for f in frequencies],
        default_frequency=default,
        carried=carried,
        action=url_for("giving.give", fund_slug=fund.slug),
    )
    return page, 200, {"Cache-Control": "no-store"}


def link_snippet(fund: Fund) -> str:
    """Plain HTML links with prefilled amounts, to paste into a CMS (no iframe, no script)."""
    base = public_url(url_for("giving.give", fund_slug=fund.slug))
    links = []
    for frequency, amounts in box_amounts(fund).items():
        suffix = "" if frequency == "one_time" else f" {FREQUENCY_LABELS[frequency].lower()}"
        for cents in amounts:
            query = urlencode({"amount": cents // 100, "frequency": frequency, "utm_medium": "embed-links"})
            links.append(f'<a href="{base}?{query}">Give {format_dollars(cents)}{suffix}</a>')
    return f'<p class="give-links">Support {_escape(fund.name)}: ' + " · ".join(links) + "</p>"


def iframe_snippet(fund: Fund) -> str:
    src = public_url(url_for("embed.box", fund_slug=fund.slug))
    return (
        f'<iframe src="{src}" title="Give to {_escape(fund.name)}" width="100%" height="360" '
        'style="border:0;max-width:36rem" loading="lazy" referrerpolicy="no-referrer-when-downgrade"></iframe>'
    )


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
