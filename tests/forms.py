"""Reading rendered pages as a browser would, for tests that post forms with CSRF on.

`csrf_token(client, url)` loads a page and returns the token its form carries; the test client
keeps the session cookie the token is bound to.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

from flask.testing import FlaskClient


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.inputs.append(dict(attrs))


def inputs(html: str) -> list[dict[str, str | None]]:
    """Every <input> on the page, as a dict of its attributes."""
    parser = _Inputs()
    parser.feed(html)
    return parser.inputs


def input_value(html: str, name: str) -> str | None:
    """The value attribute of the first input named `name` (None if absent)."""
    for attributes in inputs(html):
        if attributes.get("name") == name:
            return attributes.get("value")
    raise AssertionError(f"no input named {name!r} on the page")


def checked_values(html: str, name: str) -> list[str | None]:
    """The values of the checked radio buttons or checkboxes named `name`."""
    return [a.get("value") for a in inputs(html) if a.get("name") == name and "checked" in a]


def extract_csrf_token(html: str) -> str:
    token = input_value(html, "csrf_token")
    if not token:
        raise AssertionError("the page has no CSRF token")
    return token


def csrf_token(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return extract_csrf_token(response.get_data(as_text=True))


_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def page_text(html: str) -> str:
    """The page's text with tags removed and whitespace collapsed, for phrase assertions."""
    return _SPACE.sub(" ", unescape(_TAGS.sub(" ", html))).strip()
