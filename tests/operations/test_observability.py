"""/metrics behind its bearer token; JSON logs with request id, route, status and duration and no
donor data; Sentry events scrubbed of personal data."""

from __future__ import annotations

import json
import logging

import pytest

from donations import create_app
from donations.operations.observability import JsonFormatter, RequestContextFilter, scrub_event
from tests import stripe_events as se
from tests.factories import make_fund


@pytest.fixture
def metrics_app(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-token")
    return app


def test_metrics_answer_only_the_bearer_token(app, client, monkeypatch):
    assert client.get("/metrics").status_code == 404  # no token set: no metrics
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-token")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_metrics_show_deliveries_waiting_events_mail_and_latency(metrics_app, client, webhook_secret):
    make_fund("metrics", is_default=True)
    payload = se.event("checkout.session.completed", se.checkout_session(amount_cents=1_000))
    body = json.dumps(payload).encode()
    client.post("/stripe/webhook", data=body, headers=se.signed_headers(body, webhook_secret))  # stored, waiting
    client.post("/stripe/webhook", data=body, headers={"Stripe-Signature": "t=1,v1=00"})  # refused
    text = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).get_data(as_text=True)
    assert 'donations_webhook_deliveries_total{outcome="stored"}' in text
    assert 'donations_webhook_deliveries_total{outcome="refused_400"}' in text
    assert "donations_events_waiting 1.0" in text
    assert "donations_events_oldest_waiting_seconds" in text
    assert "donations_mail_waiting 0.0" in text and "donations_mail_parked 0.0" in text
    assert 'donations_request_duration_seconds_bucket{le="0.005",method="POST",route="/stripe/webhook"' in text
    se.apply_events(metrics_app)
    text = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).get_data(as_text=True)
    assert "donations_events_waiting 0.0" in text and "donations_mail_waiting 1.0" in text
    assert 'donations_checkouts{status="paid"} 1.0' in text


def test_json_logs_carry_request_id_route_status_and_duration_without_donor_data(database_url, capsys):
    app = create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": database_url, "LOG_FORMAT": "json", "SERVER_NAME": "localhost"}
    )
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    records: list[str] = []
    handler.emit = lambda record: records.append(handler.format(record))  # type: ignore[method-assign]
    logging.getLogger("donations").addHandler(handler)
    try:
        with app.app_context():

            @app.get("/log-something")
            def log_something() -> str:
                logging.getLogger("donations.test").warning("could not reach reader@example.org")
                return "ok"

            response = app.test_client().get(
                "/log-something?email=reader@example.org", headers={"X-Request-ID": "req-12345678"}
            )
    finally:
        logging.getLogger("donations").removeHandler(handler)
        root = logging.getLogger()
        for installed in [h for h in root.handlers if getattr(h, "_donations", False)]:
            root.removeHandler(installed)  # the app's JSON handler on stderr: not for the next tests
    assert response.headers["X-Request-ID"] == "req-12345678"
    lines = [json.loads(line) for line in records]
    message = next(line for line in lines if line["logger"] == "donations.test")
    assert message["message"] == "could not reach [email redacted]" and message["request_id"] == "req-12345678"
    access = next(line for line in lines if line["logger"] == "donations.requests")
    assert (access["route"], access["status"], access["method"], access["request_id"]) == (
        "/log-something",
        200,
        "GET",
        "req-12345678",
    )
    assert access["duration_ms"] >= 0 and "reader@example.org" not in json.dumps(lines)


def test_sentry_events_carry_no_personal_data():
    event = {
        "user": {"email": "reader@example.org", "ip_address": "203.0.113.9"},
        "request": {
            "url": "https://give.example.org/give",
            "data": {"email": "reader@example.org"},
            "cookies": {"session": "abc"},
            "query_string": "email=reader@example.org",
            "headers": {"User-Agent": "x", "Cookie": "session=abc", "Stripe-Signature": "t=1", "Authorization": "B"},
        },
        "exception": {"values": [{"value": "duplicate key reader@example.org card 4242 4242 4242 4242"}]},
    }
    scrubbed = scrub_event(event, {})
    assert "user" not in scrubbed
    assert set(scrubbed["request"]) == {"url", "headers"} and scrubbed["request"]["headers"] == {"User-Agent": "x"}
    assert scrubbed["exception"]["values"][0]["value"] == "duplicate key [email redacted] card [card redacted]"


def test_sentry_is_set_up_only_with_a_dsn(database_url, monkeypatch):
    import sentry_sdk

    seen: list[dict] = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: seen.append(options))
    create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url})
    assert seen == []
    create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "SENTRY_DSN": "https://key@sentry.example/1"})
    [options] = seen
    assert options["send_default_pii"] is False and options["before_send"] is scrub_event
    assert any(type(i).__name__ == "FlaskIntegration" for i in options["integrations"])
