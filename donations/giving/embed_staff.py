"""The staff page that generates a fund's embed snippets (the iframe, and plain links with
prefilled amounts for a CMS that takes no iframe), with a live preview of both. Read-only: any
staff role. It lives with the embed it describes (giving and staff are sibling layers)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from donations.accounts.roles import READ, role_required
from donations.extensions import db
from donations.giving.embed import iframe_snippet, link_snippet
from donations.ledger.models import Fund

bp = Blueprint("embed_staff", __name__)


@bp.get("/staff/funds/<row_id:fund_id>/embed")
@role_required(*READ)
def snippets(fund_id: int) -> ResponseReturnValue:
    fund = db.session.get(Fund, fund_id)
    if fund is None:
        abort(404, "There is no such fund.")
    links = link_snippet(fund)
    return render_template(
        "staff/fund_embed.html",
        fund=fund,
        iframe=iframe_snippet(fund),
        links=links,
        # Built by link_snippet from escaped parts: the fund name escaped, URLs from url_for and
        # urlencode, the base from PUBLIC_URL (configuration, not input).
        links_preview=Markup(links),  # noqa: S704  # nosec B704
        preview_src=url_for("embed.box", fund_slug=fund.slug, utm_campaign="staff-preview"),
        origins=current_app.config.get("EMBED_ORIGINS", []),
    )
