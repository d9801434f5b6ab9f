"""The funder's read-only page of one packet, opened from a funder link without an account.

Closed links (expired, revoked, unknown) answer 404 and say nothing more. Every view of the
page and every file downloaded is audited with no staff user. The page is not indexed or cached;
like every page, it sends no Referer to other sites (its address is the key).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue

from donations.extensions import unit_of_work
from donations.grants import funder_links
from donations.grants.models import FunderLink
from donations.grants.packet import mimetype_of, packet_file, packet_of

bp = Blueprint("funder", __name__, url_prefix="/funder")

CLOSED = "This link is not open: it may have expired or been withdrawn. Ask the newsroom for a new one."


@bp.after_request
def private(response: Response) -> Response:
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "no-store"
    return response


def _open_or_404(token: str) -> FunderLink:
    link = funder_links.open_link(token)
    if link is None:
        abort(404, CLOSED)
    return link


@bp.get("/<token>")
def packet(token: str) -> ResponseReturnValue:
    link = _open_or_404(token)
    found = packet_of(link.run)
    if found is None:
        abort(404, CLOSED)
    with unit_of_work():
        funder_links.record_view(link, "page", request.remote_addr)
    return render_template("grants/funder_packet.html", link=link, run=link.run, packet=found, token=token)


@bp.get("/<token>/files/<path:name>")
def packet_download(token: str, name: str) -> ResponseReturnValue:
    link = _open_or_404(token)
    found = packet_of(link.run)
    content = None if found is None else packet_file(found, name)
    if content is None:
        abort(404, "There is no such file in this packet.")
    with unit_of_work():
        funder_links.record_view(link, name, request.remote_addr)
    filename = name.rsplit("/", 1)[-1]
    return Response(
        content,
        mimetype=mimetype_of(name),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
