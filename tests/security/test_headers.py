"""Security headers on every page type: every route of `app.url_map` (routes added later are
covered as they appear), GET and POST, signed out and signed in as an administrator, whatever
the answer (page, redirect, JSON, file, error). No page has inline script or style, which the
policy would block. HSTS and secure cookies in production; the app behind a proxy."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from config import Config
from donations import create_app
from tests.giving.support import gift_form
from tests.security.support import browser, build_world, csrf_token, routes, signed_in, url_for_rule

REQUIRED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.fixture
def world(app):
    return build_world()


# The one route other sites may frame (the gift box for articles): only by EMBED_ORIGINS.
FRAMABLE_ENDPOINTS = {"embed.box"}


def policy_problems(policy: str | None, frame_ancestors: str = "'none'") -> list[str]:
    if not policy:
        return ["no Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    problems = [
        f"{name} is {directives.get(name)!r}, not {expected!r}"
        for name, expected in {
            "default-src": "'self'",
            "object-src": "'none'",
            "base-uri": "'none'",
            "frame-ancestors": frame_ancestors,
        }.items()
        if directives.get(name) != expected
    ]
    for name in ("script-src", "style-src"):
        if not directives.get(name, "").startswith("'self'") or "unsafe" in directives.get(name, ""):
            problems.append(f"{name} is {directives.get(name)!r}")
    if not directives.get("form-action", "").startswith("'self'"):
        problems.append("form-action does not start with 'self'")
    return problems


def header_problems(response, framable_by: str | None = None) -> list[str]:
    """`framable_by`: the frame-ancestors an embeddable route must say (it then has no
    X-Frame-Options); every other answer must refuse every frame."""
    problems = policy_problems(response.headers.get("Content-Security-Policy"), framable_by or "'none'")
    required = {**REQUIRED, "X-Frame-Options": None} if framable_by else REQUIRED
    problems += [
        f"{name}: {response.headers.get(name)!r}"
        for name, value in required.items()
        if response.headers.get(name) != value
    ]
    if "camera=()" not in response.headers.get("Permissions-Policy", ""):
        problems.append("no Permissions-Policy")
    return problems


class _InlineCode(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}=javascript:")


def inline_code(html: str) -> list[str]:
    parser = _InlineCode()
    parser.feed(html)
    return parser.found


def visitors(app) -> dict[str, FlaskClient]:
    admin, _user = signed_in(app, "admin")
    return {"signed out": browser(app), "admin": admin}


def test_every_route_answers_with_the_security_headers(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "EMBED_ORIGINS", ["https://news.example.org"])
    problems = []
    for who, client in visitors(app).items():
        for method in ("GET", "POST"):
            for rule in routes(app, method):
                url = url_for_rule(rule, world.url_values)
                response = client.open(url, method=method, data={"x": "1"} if method == "POST" else None)
                framable = (
                    " ".join(["'self'", *app.config["EMBED_ORIGINS"]]) if rule.endpoint in FRAMABLE_ENDPOINTS else None
                )
                problems += [
                    f"{method} {url} ({who}, {response.status_code}): {p}" for p in header_problems(response, framable)
                ]
        for url in ("/no-such-page", "/staff/no-such-page", "/static/no-such-file.css"):
            response = client.get(url)
            problems += [f"GET {url} ({who}, {response.status_code}): {p}" for p in header_problems(response)]
        response = client.put("/give")
        problems += [f"PUT /give ({who}, {response.status_code}): {p}" for p in header_problems(response)]
    assert problems == []


def test_no_page_has_inline_script_or_style(app, world):
    found = []
    for who, client in visitors(app).items():
        for rule in routes(app, "GET"):
            url = url_for_rule(rule, world.url_values)
            response = client.get(url)
            if response.mimetype == "text/html":
                found += [f"{url} ({who}): {item}" for item in inline_code(response.get_data(as_text=True))]
    assert found == []


def test_staff_pages_are_never_cached(app, world):
    admin, _user = signed_in(app, "admin")
    for rule in routes(app, "GET", "/staff"):
        url = url_for_rule(rule, world.url_values)
        assert admin.get(url).headers.get("Cache-Control") == "no-store", url


def test_hsts_and_secure_cookies_in_production_only(app, database_url, fund):
    production = create_app(
        "production",
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "a-production-secret-for-tests",
            "STRIPE_SECRET_KEY": "sk_test_headers",
            "STRIPE_WEBHOOK_SECRET": "whsec_headers",
            "SERVER_NAME": "localhost",
            "PUBLIC_URL": "https://localhost",
            "TRUSTED_HOSTS": ["localhost"],
        },
    )
    page = browser(production).get("/give", base_url="https://localhost")
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == f"max-age={Config.HSTS_MAX_AGE}; includeSubDomains"
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # Only the gift page posts to a view that redirects to Stripe Checkout.
    assert "form-action 'self' https://checkout.stripe.com" in page.headers["Content-Security-Policy"]
    assert "checkout.stripe.com" not in browser(production).get("/staff/sign-in").headers["Content-Security-Policy"]

    development = browser(app).get("/give")
    assert "Strict-Transport-Security" not in development.headers
    cookie = development.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "form-action 'self';" in development.headers["Content-Security-Policy"] + ";"


def test_behind_a_proxy_the_client_address_and_scheme_come_from_it(app, database_url, fund, monkeypatch):
    proxied = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SERVER_NAME": "localhost",
            "PROXY_FIX_X_FOR": "1",  # as the environment gives it
            "PROXY_FIX_X_PROTO": 1,
            "GIVE_RATE_LIMIT": Config.GIVE_RATE_LIMIT,
            "PUBLIC_URL": "https://localhost",
        },
    )
    client = browser(proxied)
    token = csrf_token(client)

    def give(address: str, n: int):
        headers = {"X-Forwarded-For": address, "X-Forwarded-Proto": "https", "Referer": "https://localhost/give"}
        return client.post("/give", data=gift_form(token, email=f"p{n}@example.org"), headers=headers)

    first = [give("198.51.100.1", n) for n in range(11)]
    assert [r.status_code for r in first] == [303] * 10 + [429]
    assert "cancel=https://localhost/give" in first[0].headers["Location"]  # return addresses: on PUBLIC_URL
    assert give("198.51.100.2", 99).status_code == 303  # another reader, same proxy

    # Without PROXY_FIX_* the header is not trusted: anyone could pick their own address.
    monkeypatch.setitem(app.config, "GIVE_RATE_LIMIT", Config.GIVE_RATE_LIMIT)
    direct = browser(app, "203.0.113.9")
    token = csrf_token(direct)
    statuses = [
        direct.post(
            "/give", data=gift_form(token, email=f"d{n}@example.org"), headers={"X-Forwarded-For": f"10.0.0.{n}"}
        ).status_code
        for n in range(11)
    ]
    assert statuses == [303] * 10 + [429]


def test_stripe_hosts_are_allowed_as_form_targets_only_where_a_form_goes_there():
    from donations.security import BILLING_PORTAL_ORIGIN, STRIPE_CHECKOUT_ORIGIN, content_security_policy

    def form_action(gateway: str, endpoint: str) -> str:
        policy = content_security_policy({"PAYMENTS_GATEWAY": gateway}, endpoint)
        return next(d for d in policy.split("; ") if d.startswith("form-action"))

    assert form_action("stripe", "giving.give") == f"form-action 'self' {STRIPE_CHECKOUT_ORIGIN}"
    assert form_action("stripe", "membership.account") == f"form-action 'self' {BILLING_PORTAL_ORIGIN}"
    for gateway, endpoint in [("local", "membership.account"), ("local", "giving.give"), ("stripe", "staff.dashboard")]:
        assert form_action(gateway, endpoint) == "form-action 'self'"
