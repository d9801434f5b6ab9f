"""The floor for webhooks: verify the signature with stripe.WebhookSignature, INSERT the event id
ON CONFLICT DO NOTHING, commit; one commit per event. Run under the same gunicorn settings as
the app (`gunicorn --chdir bench minimal_webhook:app`), with DATABASE_URL and
STRIPE_WEBHOOK_SECRET set; the table is made by `create_table`."""

from __future__ import annotations

import json
import os
import re
import threading

import psycopg
import stripe
from flask import Flask, jsonify, request

TABLE = "bench_minimal_events"
app = Flask(__name__)
_local = threading.local()


def _dsn() -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", os.environ["DATABASE_URL"])


def create_table(connection: psycopg.Connection) -> None:
    connection.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id varchar(255) PRIMARY KEY)")
    connection.execute(f"TRUNCATE {TABLE}")


def _connection() -> psycopg.Connection:
    # One connection per gunicorn thread, kept for the process's life: the app pools the same way.
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = _local.connection = psycopg.connect(_dsn())
    return connection


@app.post("/stripe/webhook")
def webhook():  # type: ignore[no-untyped-def]
    payload = request.get_data()
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"),
            request.headers.get("Stripe-Signature", ""),
            os.environ["STRIPE_WEBHOOK_SECRET"],
            300,
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        return jsonify(error="bad signature"), 400
    event_id = json.loads(payload)["id"]
    connection = _connection()
    connection.execute(f"INSERT INTO {TABLE} (id) VALUES (%s) ON CONFLICT DO NOTHING", (event_id,))
    connection.commit()
    return jsonify(id=event_id)


@app.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")
