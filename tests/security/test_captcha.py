"""The optional CAPTCHA: off by default; when configured, the gift page shows the provider's
widget (and the CSP allows that provider), and a checkout opens only after the provider's
siteverify endpoint (here a local recording server) confirms the token."""

from __future__ import annotations

import pytest

from donations import ConfigurationError, create_app
from tests.giving.support import gift_form
from tests.http_recorder import Answer, HTTPRecorder
from tests.security.support import all_gifts, blocked, csrf_token

SECRET = "captcha-secret-for-tests"
SOLVED = "solved-token"


def siteverify(request):
    ok = request.form.get("secret") == SECRET and request.form.get("response") == SOLVED
    return Answer(json={"success": ok} if ok else {"success": False, "error-codes": ["invalid-input-response"]})


@pytest.fixture
def captcha(app, monkeypatch):
    with HTTPRecorder() as provider:
        provider.route("POST", "/siteverify", siteverify)
        monkeypatch.setitem(app.config, "CAPTCHA_PROVIDER", "turnstile")
        monkeypatch.setitem(app.config, "CAPTCHA_SITE_KEY", "site-key-123")
        monkeypatch.setitem(app.config, "CAPTCHA_SECRET", SECRET)
        monkeypatch.setitem(app.config, "CAPTCHA_VERIFY_URL", provider.url + "/siteverify")
        monkeypatch.setitem(app.config, "CAPTCHA_TIMEOUT_SECONDS", 1)
        yield provider


def test_off_by_default(client, fund):
    page = client.get("/give")
    html = page.get_data(as_text=True)
    assert "cf-turnstile" not in html and "hcaptcha" not in html
    assert "challenges.cloudflare.com" not in page.headers["Content-Security-Policy"]
    assert client.post("/give", data=gift_form(csrf_token(client))).status_code == 303


def test_the_widget_and_its_sources_appear_on_the_gift_page_only(client, fund, captcha):
    page = client.get("/give")
    html = page.get_data(as_text=True)
    assert '<div class="cf-turnstile captcha" data-sitekey="site-key-123"></div>' in html
    assert '<script src="https://challenges.cloudflare.com/turnstile/v0/api.js" async defer></script>' in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self' https://challenges.cloudflare.com;" in policy
    assert "frame-src https://challenges.cloudflare.com;" in policy
    assert "challenges.cloudflare.com" not in client.get("/healthz").headers["Content-Security-Policy"]


def test_a_solved_challenge_opens_the_checkout(client, fund, captcha):
    response = client.post("/give", data=gift_form(csrf_token(client), **{"cf-turnstile-response": SOLVED}))
    assert response.status_code == 303
    [check] = captcha.requests_to("POST", "/siteverify")
    assert (check.form["secret"], check.form["response"], check.form["remoteip"]) == (SECRET, SOLVED, "127.0.0.1")
    assert all_gifts() == 1


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_a_missing_or_forged_token_is_refused_and_counted(client, fund, captcha, token):
    response = client.post("/give", data=gift_form(csrf_token(client), **{"cf-turnstile-response": token}))
    assert response.status_code == 400
    assert "check that you are a person" in response.get_data(as_text=True)
    assert len(captcha.requests_to("POST", "/siteverify")) == (1 if token else 0)
    assert all_gifts() == 0
    assert blocked("captcha") == 1


@pytest.mark.parametrize("answer", [Answer(status=500, json={}), Answer(json={"success": True}, delay=3)])
def test_the_provider_failing_or_slow_refuses_for_now(client, fund, captcha, answer):
    captcha.route("POST", "/siteverify", answer)
    response = client.post("/give", data=gift_form(csrf_token(client), **{"cf-turnstile-response": SOLVED}))
    assert response.status_code == 503
    assert "Nothing was charged" in response.get_data(as_text=True)
    assert all_gifts() == 0


def test_hcaptcha_uses_its_own_field_and_sources(app, client, fund, captcha, monkeypatch):
    monkeypatch.setitem(app.config, "CAPTCHA_PROVIDER", "hcaptcha")
    page = client.get("/give")
    assert 'class="h-captcha captcha"' in page.get_data(as_text=True)
    policy = page.headers["Content-Security-Policy"]
    for directive in ("script-src", "style-src", "frame-src", "connect-src"):
        assert f"{directive} " in policy and "https://*.hcaptcha.com" in policy.split(f"{directive} ")[1].split(";")[0]
    token = csrf_token(client)
    assert client.post("/give", data=gift_form(token, **{"cf-turnstile-response": SOLVED})).status_code == 400
    assert client.post("/give", data=gift_form(token, **{"h-captcha-response": SOLVED})).status_code == 303


@pytest.mark.parametrize(
    "settings",
    [
        {"CAPTCHA_PROVIDER": "recaptcha", "CAPTCHA_SITE_KEY": "k", "CAPTCHA_SECRET": "s"},
        {"CAPTCHA_PROVIDER": "turnstile", "CAPTCHA_SITE_KEY": "k"},
        {
            "CAPTCHA_PROVIDER": "turnstile",
            "CAPTCHA_SITE_KEY": "k",
            "CAPTCHA_SECRET": "s",
            "CAPTCHA_VERIFY_URL": "file:///etc/passwd",
        },
    ],
)
def test_a_half_configured_captcha_refuses_to_start(database_url, settings):
    with pytest.raises(ConfigurationError):
        create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, **settings})
