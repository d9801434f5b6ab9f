"""The emailed self-service link is built on the configured public address, whatever Host a
request names; it does not carry the donor's email; production will not start without
PUBLIC_URL; TRUSTED_HOSTS refuses other hosts; and the member's page links to the annual
statement request."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from donations import ConfigurationError, create_app
from tests.conftest import TEST_CONFIG
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import extract_csrf_token, page_text
from tests.giving.support import magic_links, open_account

EVIL = "http://evil.example"


def request_link_via(client: FlaskClient, email: str, base_url: str) -> None:
    """Ask for a link as a request to `base_url` (its Host header) would."""
    page = client.get("/membership", base_url=base_url)
    assert page.status_code == 200
    token = extract_csrf_token(page.get_data(as_text=True))
    response = client.post("/membership", data={"csrf_token": token, "email": email}, base_url=base_url)
    assert response.status_code == 303


def token_payload(url: str) -> dict:
    token = urlsplit(url).path.rsplit("/", 1)[1]
    payload = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_poisoned_host_header_still_gets_a_link_on_the_public_url(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://give.example.org")
    make_donor("kim@example.org", name="Kim")
    request_link_via(client, "kim@example.org", EVIL)
    (link,) = magic_links()
    assert link.context["url"].startswith("https://give.example.org/membership/link/")
    assert "evil.example" not in link.context["url"]


def test_without_public_url_the_link_uses_the_server_name_not_the_host_header(client):
    make_donor("kim@example.org", name="Kim")
    request_link_via(client, "kim@example.org", EVIL)
    (link,) = magic_links()
    assert link.context["url"].startswith("http://localhost/membership/link/")


def test_the_link_does_not_carry_the_email_and_still_opens_the_account(client):
    make_donor("Kim.Private@Example.org", name="Kim")
    open_account(client, "kim.private@example.org")  # the link it opens works
    (link,) = magic_links()
    payload = token_payload(link.context["url"])
    assert set(payload) == {"link", "donor", "email", "issued"}
    assert "@" not in payload["email"] and "kim" not in payload["email"].lower()
    assert "kim" not in link.context["url"].lower()


def production_settings(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "a-production-secret-for-this-test",
        "STRIPE_SECRET_KEY": "sk_test_public_url",
        "STRIPE_WEBHOOK_SECRET": "whsec_public_url",
        "TRUSTED_HOSTS": "give.example.org",
        **extra,
    }


@pytest.mark.parametrize("public_url", [None, "", "give.example.org"])
def test_production_refuses_to_start_without_a_public_url(database_url, monkeypatch, public_url):
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    extra = {} if public_url is None else {"PUBLIC_URL": public_url}
    with pytest.raises(ConfigurationError, match="PUBLIC_URL"):
        create_app("production", production_settings(database_url, **extra))
    assert create_app("production", production_settings(database_url, PUBLIC_URL="https://give.example.org"))


@pytest.mark.parametrize("trusted_hosts", [None, "", " , "])
def test_production_refuses_to_start_without_trusted_hosts(database_url, monkeypatch, trusted_hosts):
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    settings = production_settings(database_url, PUBLIC_URL="https://give.example.org")
    settings.pop("TRUSTED_HOSTS")
    extra = {} if trusted_hosts is None else {"TRUSTED_HOSTS": trusted_hosts}
    with pytest.raises(ConfigurationError, match="TRUSTED_HOSTS"):
        create_app("production", {**settings, **extra})
    guarded = create_app("production", {**settings, "TRUSTED_HOSTS": "give.example.org"})
    assert guarded.config["TRUSTED_HOSTS"] == ["give.example.org"]


def test_trusted_hosts_from_the_environment_refuse_other_hosts(database_url, monkeypatch):
    monkeypatch.setenv("TRUSTED_HOSTS", "give.example.org, localhost")
    guarded = create_app("testing", {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    assert guarded.config["TRUSTED_HOSTS"] == ["give.example.org", "localhost"]
    with guarded.app_context():
        client = guarded.test_client()
        refused = client.get("/membership", base_url=EVIL)
        assert refused.status_code == 400 and b"not served at that host" in refused.data
        assert client.get("/membership", base_url="https://give.example.org").status_code == 200
        assert client.get("/membership").status_code == 200


def test_the_member_page_links_to_the_annual_statement_request(client):
    donor = make_donor("rae@example.org", name="Rae")
    make_gift(donor, make_fund(), 2_500)
    page = open_account(client, "rae@example.org")
    assert "Request your annual statement" in page_text(page)
    href = page.split('href="/statements/', 1)[1].split('"', 1)[0]
    statement_page = client.get(f"/statements/{href}")
    assert statement_page.status_code == 200
    assert "Email my statement" in statement_page.get_data(as_text=True)


def test_a_member_without_gifts_is_not_offered_a_statement(client):
    make_donor("new@example.org", name="New")
    page = open_account(client, "new@example.org")
    assert "Request your annual statement" not in page_text(page)
