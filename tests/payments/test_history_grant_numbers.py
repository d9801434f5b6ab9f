"""The grant rules give the same numbers for the same donors whether their history came by
webhooks, by `history stripe` or by `history csv`: a returning donor is never counted as new."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger.models import Gift
from tests import stripe_events as se
from tests.factories import make_fund
from tests.grants.support import donor_rows, make_program, summary
from tests.http_recorder import HTTPRecorder
from tests.stripe_account import StripeAccount

# (email, dollars, local date): Ann gave before the window and in it; Bo only in it.
HISTORY = [
    ("ann@example.org", 50, "2025-06-01"),
    ("ann@example.org", 100, "2026-11-10"),
    ("bo@example.org", 75, "2026-11-20"),
]


def _stamp(day: str) -> int:
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(day).replace(hour=12, tzinfo=ZoneInfo("America/Los_Angeles"))
    return int(moment.astimezone(UTC).timestamp())


def _sessions(metadata: dict[str, str] | None) -> list[dict]:
    sessions = []
    for email, dollars, day in HISTORY:
        session = se.checkout_session(amount_cents=dollars * 100, email=email, metadata=metadata)
        session.update(created=_stamp(day), payment_link="plink_gifts")
        sessions.append(session)
    return sessions


def _numbers():
    program = make_program(slug=f"p{db.session.scalar(select(func.count()).select_from(Gift))}")
    # Every column of the donors report but the donor's row id.
    donors = sorted(tuple((k, str(v)) for k, v in row.items() if k != "Donor ID") for row in donor_rows(program))
    numbers = summary(program), donors
    db.session.rollback()
    return numbers


def _empty() -> None:
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())
        se.insert_test_installation(connection)
    db.session.expire_all()


def test_the_same_history_by_three_paths_gives_the_same_grant_numbers(
    app, client, webhook_secret, tmp_path, monkeypatch
):
    results = []

    make_fund("community-forums", is_default=True)
    for session in _sessions(None):  # the app's own, by webhook
        se.post_event(
            client, se.event("checkout.session.completed", session, created=session["created"]), webhook_secret
        )
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 3
    results.append(_numbers())

    _empty()
    make_fund("community-forums", is_default=True)
    account = StripeAccount()
    account.add("checkout_sessions", *_sessions({}))
    with HTTPRecorder() as api:
        account.serve(api)
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_grants")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        runner = app.test_cli_runner()
        assert runner.invoke(args=["payments", "gift-sources", "add", "plink_gifts"]).exit_code == 0
        result = runner.invoke(args=["history", "stripe"])
        assert result.exit_code == 0, result.output
    db.session.expire_all()
    results.append(_numbers())

    _empty()
    make_fund("community-forums", is_default=True)
    path = tmp_path / "history.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "date", "amount", "email", "first_name", "last_name"])
        writer.writerows(
            [[f"x{n}", day, str(dollars), email, "Rae", "Reader"] for n, (email, dollars, day) in enumerate(HISTORY)]
        )
    result = app.test_cli_runner().invoke(args=["history", "csv", str(path)])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    results.append(_numbers())

    assert results[0] == results[1] == results[2]
    assert results[0][0]  # the summary has figures
