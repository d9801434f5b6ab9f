"""Where a reader came from, and what a link asked for: kept with the gift they make.

`/give/<fund>?amount=25&frequency=monthly` preselects (dollars; a value that cannot be given is
ignored, never an error). `utm_source`, `utm_medium`, `utm_campaign`, `utm_content` (and
`utm_term`, `ref`: the referring article named by an embed or a link) travel in the gift page's
address, which its form posts back to. The referring page comes from the `Referer` header of the
first visit (a page of another site), kept in the reader's session, since the gift page's own
POST names only the gift page.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from donations.money import AmountError, parse_dollars

ATTRIBUTION_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "ref")
SESSION_KEY = "arrived_from"
MAX_VALUE = 200
MAX_REFERRER = 500


def linked_amount(text: str | None) -> int | None:
    """The cents a prefill link names, or None when it names nothing that can be given."""
    if not text or len(text) > 20:
        return None
    try:
        cents = parse_dollars(text)
    except AmountError:
        return None
    config = current_app.config
    if not config["GIFT_MINIMUM_CENTS"] <= cents <= config["GIFT_MAXIMUM_CENTS"]:
        return None
    return cents


def dollars_text(cents: int) -> str:
    """What the "Other amount" box shows: "40" for whole dollars, "37.50" otherwise."""
    return str(cents // 100) if cents % 100 == 0 else f"{cents // 100}.{cents % 100:02d}"


def _external(referrer: str | None, host: str) -> str | None:
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.netloc == host:
        return None
    return referrer[:MAX_REFERRER]


def remember(referrer: str | None, host: str, session: MutableMapping[str, Any]) -> None:
    """Keep the page of another site a reader arrived from (the latest one)."""
    external = _external(referrer, host)
    if external and session.get(SESSION_KEY) != external:
        session[SESSION_KEY] = external


def attribution(args: Mapping[str, str], referrer: str | None, host: str, session: Mapping[str, Any]) -> dict[str, str]:
    kept = {key: args[key][:MAX_VALUE] for key in ATTRIBUTION_KEYS if args.get(key)}
    came_from = _external(referrer, host) or session.get(SESSION_KEY)
    if came_from:
        kept["referrer"] = str(came_from)[:MAX_REFERRER]
    return kept
