"""The gift page's HTML, kept for GIFT_PAGE_CACHE_SECONDS per fund and frequency.

Rendering the form (WTForms widgets, Babel amounts, the fund's query) costs several times what
the rest of a request does; the page is the same for every reader but for its CSRF token. So a
plain GET (no resumed gift) is rendered once per process and period with the token replaced by
a placeholder, and each reader gets the stored page with a fresh token of their own session.
Only pages answered 200 are kept (one per active fund and frequency: a bounded set). Staff
edits to a fund show within the period, as its progress bar already does (bench/RESULTS.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_wtf.csrf import generate_csrf

from donations.ttl_cache import TtlCache

TOKEN_PLACEHOLDER = "\x00csrf-token\x00"  # never in a rendered page: NUL is not valid HTML text
_pages: TtlCache[tuple[str | None, str | None], str] = TtlCache()


def clear() -> None:
    _pages.clear()


def _key(fund_slug: str | None) -> tuple[str | None, str | None] | None:
    """The page's identity, or None when this request must be rendered afresh."""
    if request.method != "GET" or "resume" in request.args or "amount" in request.args:
        return None
    frequency = request.args.get("frequency")
    # Unknown frequencies render the default one: they share its key (the set stays bounded).
    if frequency not in current_app.config.get("GIFT_FREQUENCIES", ()):
        frequency = None
    return fund_slug, frequency


def cached_gift_page(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def gift_page(fund_slug: str | None = None) -> Any:
        ttl = float(current_app.config.get("GIFT_PAGE_CACHE_SECONDS", 0))
        key = _key(fund_slug) if ttl > 0 else None
        if key is None:
            return view(fund_slug=fund_slug)
        kept = _pages.get(key)
        if kept is not None:
            return kept.replace(TOKEN_PLACEHOLDER, generate_csrf())
        result = view(fund_slug=fund_slug)
        page, status = result if isinstance(result, tuple) else (result, 200)
        if status == 200 and isinstance(page, str):
            # generate_csrf() returns the token this request's page was rendered with.
            _pages.put(key, page.replace(generate_csrf(), TOKEN_PLACEHOLDER), ttl)
        return result

    return gift_page
