"""A NUL byte in a URL is bad input, never a database outage: PostgreSQL refuses NUL in text, and
that refusal used to be answered 503 with Retry-After and logged as "database unavailable". Any
value the database refuses (DataError) is a 400; only a real outage is logged as one."""

from __future__ import annotations

import logging

import pytest

from tests.factories import make_fund
from tests.security.support import browser, signed_in

NUL_URLS = [
    ("/give/%00", 404),
    ("/give/a%00b", 404),
    ("/give/thanks?session_id=%00", 400),
    ("/pay/local/cs_local_%00", 404),
    ("/give?resume=%00", 400),
]
STAFF_NUL_URLS = [("/staff/grants/%00/", 404), ("/staff/gifts?after=%00", 400)]


def assert_bad_input_not_outage(response, status: int, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status_code == status
    assert "Retry-After" not in response.headers
    assert not [r for r in caplog.records if "database unavailable" in r.getMessage()]


@pytest.mark.parametrize(("url", "status"), NUL_URLS)
def test_a_nul_byte_in_a_public_url_is_bad_input(app, url, status, caplog):
    make_fund("community-forums", is_default=True)
    caplog.set_level(logging.INFO)
    assert_bad_input_not_outage(browser(app).get(url), status, caplog)


@pytest.mark.parametrize(("url", "status"), STAFF_NUL_URLS)
def test_a_nul_byte_in_a_staff_url_is_bad_input(app, url, status, caplog):
    staff, _user = signed_in(app, "admin")
    caplog.set_level(logging.INFO)
    assert_bad_input_not_outage(staff.get(url), status, caplog)


def test_a_nul_byte_in_a_posted_field_is_bad_input(app, caplog):
    make_fund("community-forums", is_default=True)
    caplog.set_level(logging.INFO)
    response = browser(app).post("/membership", data={"email": "kim\x00@example.org"})
    assert_bad_input_not_outage(response, 400, caplog)


@pytest.mark.postgresql_only  # SQLite accepts the value; only PostgreSQL raises DataError for it
def test_a_value_the_database_refuses_is_a_400_not_an_outage(database_url, caplog):
    from sqlalchemy import text

    from donations import create_app
    from donations.extensions import db
    from tests.conftest import TEST_CONFIG

    probe = create_app("testing", {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})

    @probe.get("/probe/<value>")
    def cast(value: str) -> str:
        return str(db.session.scalar(text("SELECT CAST(:value AS integer)"), {"value": value}))

    caplog.set_level(logging.INFO)
    with probe.app_context():
        client = probe.test_client()
        assert client.get("/probe/12").get_data(as_text=True) == "12"
        response = client.get("/probe/twelve")
    assert_bad_input_not_outage(response, 400, caplog)
    assert [r for r in caplog.records if "value refused by the database: InvalidTextRepresentation" in r.getMessage()]
