"""`flask --app wsgi payments ...`"""

from __future__ import annotations

from flask.cli import AppGroup

payments_cli = AppGroup("payments", help="Stripe events, billing and reconciliation.")
