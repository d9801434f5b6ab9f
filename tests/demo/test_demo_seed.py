"""`demo seed`: a living newsroom written through the ledger, deterministic, idempotent,
`--reset` starts over, refused in production, the staff login printed last."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from donations import demo
from donations.clock import local_date
from donations.extensions import db
from donations.grants import service as grants
from donations.grants.models import GrantProgram
from donations.grants.reports.base import ReportParams, context
from donations.grants.reports.evaluation import program_totals
from donations.ledger.currency import counted_gift
from donations.ledger.models import (
    Dispute,
    Donor,
    Fund,
    Gift,
    GiftSource,
    Membership,
    MembershipChange,
    MembershipStatus,
    Reversal,
    ReversalKind,
)
from donations.payments.models import Installation, Payout, PayoutTransaction
from donations.staff import dashboard

NOW = datetime(2026, 12, 6, 21, 30, tzinfo=UTC)


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _fingerprint() -> list[tuple]:
    return [
        tuple(row)
        for row in db.session.execute(
            select(Gift.amount_cents, Gift.received_at, Gift.status, Gift.source, Donor.name)
            .join(Donor, Donor.id == Gift.donor_id)
            .order_by(Gift.received_at, Gift.amount_cents, Donor.name)
        )
    ]


def test_the_demo_newsroom_has_every_kind_of_fact(app):
    summary = demo.seed(NOW)
    db.session.commit()
    assert summary is not None and summary.one_time > 300 and summary.members > 40
    assert _count(Fund) == 3
    held = db.session.scalars(select(Fund).where(Fund.sponsor_held.is_(True))).one()
    sponsored = db.session.scalars(select(Gift).where(Gift.fund_id == held.id)).all()
    assert len(sponsored) == summary.sponsor_gifts == 8
    assert all(g.source == GiftSource.SPONSOR and g.tax_deductible for g in sponsored)
    assert _count(Gift, Gift.tax_deductible.is_(True)) == 8  # no other gift is deductible
    paused = db.session.scalars(select(Membership).where(Membership.paused_until.is_not(None))).one()
    assert paused.paused_until.replace(tzinfo=UTC) > NOW and paused.status == MembershipStatus.ACTIVE
    assert _count(Gift, Gift.source == GiftSource.CHECK) == 30
    assert _count(Gift, Gift.organization.is_not(None)) > 5
    assert _count(Gift, Gift.anonymous.is_(True)) > 5
    assert _count(Membership, Membership.interval == "month") == 40
    assert _count(Membership, Membership.interval == "year") == 12
    assert _count(Membership, Membership.status == MembershipStatus.CANCELED) > 0
    assert _count(Membership, Membership.status == MembershipStatus.PAST_DUE) == 1
    assert _count(MembershipChange) > 0  # increases
    assert _count(Reversal, Reversal.kind == ReversalKind.REFUND) > 3
    assert _count(Reversal, Reversal.kind == ReversalKind.DISPUTE_LOST) == 1
    assert {d.status for d in db.session.scalars(select(Dispute))} == {"lost", "won"}
    assert _count(Payout) > 0 and _count(PayoutTransaction, PayoutTransaction.gift_id.is_not(None)) > 0
    assert set(db.session.scalars(select(GrantProgram.slug))) == {"newsmatch-2026", "rfa-2026"}
    # The program's window holds real gifts; the earliest gift is about eighteen months back.
    window = _count(Gift, Gift.received_at >= datetime(2026, 11, 1, 8, tzinfo=UTC))
    assert window > 50
    first = db.session.scalar(select(func.min(Gift.received_at)))
    assert 500 <= (NOW - first.replace(tzinfo=UTC)).days <= 550
    totals = dashboard.period_totals(local_date(NOW))
    assert all(period.gifts > 0 and period.gross_cents > 0 for period in totals)


def test_the_demo_is_deterministic(app):
    demo.seed(NOW)
    db.session.commit()
    first = _fingerprint()
    demo.wipe()
    demo.seed(NOW)
    db.session.commit()
    assert _fingerprint() == first


def test_seed_twice_changes_nothing_and_reset_starts_over(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    last_line = result.output.strip().splitlines()[-1]
    login = re.fullmatch(r"Staff sign-in at /staff/: (\S+) / (\S+)", last_line)
    assert login and login[1] == "admin@example.org"
    gifts = _count(Gift)
    ids = list(db.session.scalars(select(Gift.id).order_by(Gift.id)))
    db.session.remove()

    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 0 and "already seeded" in again.output
    assert list(db.session.scalars(select(Gift.id).order_by(Gift.id))) == ids
    db.session.remove()

    installation = db.session.scalars(select(Installation.installation_id)).all()
    db.session.remove()
    reset = runner.invoke(args=["demo", "seed", "--reset"])
    assert reset.exit_code == 0, reset.output
    assert _count(Gift) == gifts
    assert db.session.scalars(select(Installation.installation_id)).all() == installation  # kept
    assert reset.output.strip().splitlines()[-1].startswith("Staff sign-in at /staff/: admin@example.org / ")


def test_never_in_production(app):
    app.config["CONFIG_NAME"] = "production"
    try:
        result = app.test_cli_runner().invoke(args=["demo", "seed"])
    finally:
        app.config["CONFIG_NAME"] = "testing"
    assert result.exit_code != 0 and "never seeded in production" in result.output
    assert _count(Gift) == 0


def test_the_demo_programs_follow_the_presets_and_can_be_checked_by_hand(app):
    """NewsMatch and Report for America from their presets; each report's money adds up to what a
    reader finds by summing the ledger's gifts in the window (by the newsroom's local days)."""
    demo.seed(NOW)
    db.session.commit()
    newsmatch = grants.program_by_slug("newsmatch-2026").settings()
    rfa = grants.program_by_slug("rfa-2026").settings()
    assert (newsmatch.first_day, newsmatch.last_day) == (date(2026, 11, 1), date(2026, 12, 31))
    assert (newsmatch.cap_cents, newsmatch.anonymous_limit_cents, newsmatch.program_cap_cents) == (
        100_000,
        500_000,
        1_500_000,
    )
    assert "NewsMatch" in newsmatch.notes and "Report for America" in rfa.notes
    assert (rfa.first_day, rfa.last_day) == (date(2026, 6, 1), date(2027, 5, 31))
    assert rfa.goal_cents == 2_500_000  # year 1: half of a $50,000 salary

    zone = ZoneInfo(app.config["NEWSROOM_TIMEZONE"])
    for slug, settings in (("newsmatch-2026", newsmatch), ("rfa-2026", rfa)):
        start = datetime.combine(settings.first_day, time(), zone).astimezone(UTC)
        end = datetime.combine(settings.last_day + timedelta(days=1), time(), zone).astimezone(UTC)
        in_window = (Gift.received_at >= start, Gift.received_at < end, counted_gift())
        by_hand = db.session.scalar(select(func.coalesce(func.sum(Gift.amount_cents), 0)).where(*in_window))
        gifts = _count(Gift, *in_window)
        program = grants.program_by_slug(slug)
        totals = program_totals(context(settings, program.id, "summary", ReportParams()))
        assert gifts > 20 and by_hand > 0
        assert (totals.gifts_in_window, totals.gross_cents) == (gifts, by_hand), slug
    # Report for America counts every gift and installment as paid, with no per-donor cap.
    rfa_totals = program_totals(context(rfa, grants.program_by_slug("rfa-2026").id, "summary", ReportParams()))
    assert rfa_totals.counted_cents == rfa_totals.gross_cents - rfa_totals.reversed_cents
    assert rfa_totals.matchable_cents == rfa_totals.counted_cents
