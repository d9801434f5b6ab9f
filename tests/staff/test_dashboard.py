"""Dashboard numbers: local days, months and fiscal years; members and monthly recurring
revenue; the 90-day chart; open grant programs' progress."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from donations.clock import local_date, local_day_bounds, utcnow
from donations.extensions import db
from donations.grants import service as grants
from donations.grants.models import ProgramSettings
from donations.ledger.models import Gift, GiftStatus, Membership, Reversal
from donations.staff import dashboard
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import page_text
from tests.staff.support import freeze_dashboard_day, local_noon, make_staff, sign_in


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    """A UTC moment at hour:minute, local time, on `day`."""
    start, _ = local_day_bounds(day, day)
    return start + timedelta(hours=hour, minutes=minute)


def test_today_month_and_fiscal_year_in_local_time(app, monkeypatch):
    monkeypatch.setitem(app.config, "FISCAL_YEAR_START_MONTH", "7")
    today = date(2026, 8, 15)
    fund, donor = make_fund(), make_donor()
    make_gift(donor, fund, 1000, received_at=at_local(today, 0, 0))  # first minute of today
    make_gift(donor, fund, 2000, received_at=at_local(today, 23, 59))  # last minute of today
    make_gift(donor, fund, 4000, received_at=at_local(today - timedelta(days=1), 23, 59))  # yesterday
    make_gift(donor, fund, 8000, received_at=at_local(date(2026, 8, 1), 0, 1))  # this month
    make_gift(donor, fund, 16000, received_at=at_local(date(2026, 7, 1), 0, 1))  # fiscal year start
    make_gift(donor, fund, 32000, received_at=at_local(date(2026, 6, 30), 23, 59))  # last fiscal year
    make_gift(donor, fund, 64000, received_at=at_local(today + timedelta(days=1), 0, 1))  # tomorrow
    make_gift(donor, fund, 50, received_at=at_local(today, 12), status=GiftStatus.FAILED)  # never counted
    refunded = make_gift(donor, fund, 3000, received_at=at_local(today, 9), status=GiftStatus.PARTIALLY_REFUNDED)
    db.session.add(Reversal(gift_id=refunded.id, kind="refund", amount_cents=500, reversed_at=utcnow()))
    db.session.commit()

    day, month, year = dashboard.period_totals(today)
    assert (day.gifts, day.gross_cents, day.net_cents) == (3, 6000, 5500)
    assert (month.gifts, month.gross_cents, month.net_cents) == (5, 18000, 17500)
    assert (year.gifts, year.gross_cents, year.net_cents) == (6, 34000, 33500)
    assert year.since == date(2026, 7, 1) and year.label == "This fiscal year (FY2027)"


def test_fiscal_year_start_before_the_start_month(app, monkeypatch):
    monkeypatch.setitem(app.config, "FISCAL_YEAR_START_MONTH", 10)
    assert dashboard.fiscal_year_start(date(2026, 3, 1)) == date(2025, 10, 1)
    assert dashboard.fiscal_year_start(date(2026, 10, 1)) == date(2026, 10, 1)
    monkeypatch.setitem(app.config, "FISCAL_YEAR_START_MONTH", 1)
    assert dashboard.fiscal_year_start(date(2026, 3, 1)) == date(2026, 1, 1)
    assert dashboard.fiscal_year_label(date(2026, 1, 1)) == "FY2026"


def test_members_and_monthly_recurring_revenue(app):
    fund, donor = make_fund(), make_donor()
    for amount, interval, status in (
        (1000, "month", "active"),
        (500, "month", "active"),
        (12000, "year", "active"),
        (2500, "month", "canceled"),
        (2500, "month", "past_due"),
    ):
        db.session.add(
            Membership(donor_id=donor.id, fund_id=fund.id, amount_cents=amount, interval=interval, status=status)
        )
    db.session.commit()
    assert dashboard.members() == dashboard.Members(active=3, monthly_recurring_cents=2500)


def test_gifts_per_day_for_ninety_local_days(app):
    today = date(2026, 11, 3)  # two days after the end of daylight time
    fund, donor = make_fund(), make_donor()
    make_gift(donor, fund, 1000, received_at=at_local(date(2026, 11, 1), 0, 30))
    make_gift(donor, fund, 1000, received_at=at_local(date(2026, 11, 1), 23, 30))
    make_gift(donor, fund, 2500, received_at=at_local(today, 8))
    make_gift(donor, fund, 9999, received_at=at_local(today - timedelta(days=90), 12))  # day 91: left out
    days = dashboard.gifts_per_day(today)
    assert len(days) == 90 and days[0].day == today - timedelta(days=89) and days[-1].day == today
    by_day = {d.day: (d.gifts, d.cents) for d in days if d.gifts}
    assert by_day == {date(2026, 11, 1): (2, 2000), today: (1, 2500)}


def test_the_chart_scales_bars_to_the_busiest_day():
    days = [dashboard.Day(date(2026, 1, 1) + timedelta(days=n), n % 4, 100) for n in range(90)]
    chart = dashboard.chart(days)
    assert chart.y_max == 5  # 3 rounded up to a round number
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert tallest.day.gifts == 3
    assert abs(tallest.height - chart.plot_height * 3 / 5) < 0.01
    assert all(bar.height == 0 for bar in chart.bars if bar.day.gifts == 0)
    assert [value for _, value in chart.ticks] == [0, 2, 5]


def test_the_dashboard_page_draws_an_accessible_chart_and_totals(client, monkeypatch):
    sign_in(client, make_staff("viewer"))
    day = local_date(utcnow())
    noon = freeze_dashboard_day(monkeypatch, day)
    fund, donor = make_fund(), make_donor()
    make_gift(donor, fund, 4200, received_at=noon - timedelta(hours=3))
    page = client.get("/staff/").get_data(as_text=True)
    assert '<svg viewBox="0 0 900 240" width="100%" role="img" aria-labelledby="chart-title chart-desc"' in page
    assert '<title id="chart-title">Gifts per day for the last 90 days</title>' in page
    assert page.count("<rect ") == 1
    assert "style=" not in page  # nothing a strict CSP would block
    text = page_text(page)
    assert "Gifts per day as a table" in text and f"{day.isoformat()} 1 $42.00" in text
    assert "Today $42.00 1 gift" in text


def test_the_dashboard_totals_follow_new_gifts(client, monkeypatch):
    sign_in(client, make_staff("finance"))
    noon = freeze_dashboard_day(monkeypatch, local_date(utcnow()))
    fund, donor = make_fund(), make_donor()
    make_gift(donor, fund, 1000, received_at=noon - timedelta(hours=2))
    before = page_text(client.get("/staff/").get_data(as_text=True))
    make_gift(donor, fund, 2500, received_at=noon - timedelta(hours=1))
    after = page_text(client.get("/staff/").get_data(as_text=True))
    assert "Today $10.00 1 gift" in before and "Today $35.00 2 gifts" in after


def add_program(name: str, slug: str, first_day: date, last_day: date, **limits: int) -> None:
    grants.create_program(
        ProgramSettings(name=name, slug=slug, first_day=first_day, last_day=last_day, **limits), actor="test"
    )


def test_open_grant_programs_show_their_progress(client):
    sign_in(client, make_staff("viewer"))
    day = local_date(utcnow())
    # Windows a month either side of today: a run across local midnight stays inside them.
    first, last = day - timedelta(days=30), day + timedelta(days=30)
    add_program("NewsMatch 2026", "newsmatch-2026", first, last, cap_cents=10_000, goal_cents=50_000)
    add_program("Local", "local", first, last)  # no cap, no goal
    add_program("Spring drive", "spring-drive", day - timedelta(days=400), day - timedelta(days=40), goal_cents=9_900)
    db.session.commit()
    fund = make_fund()
    yesterday = local_noon(day - timedelta(days=1))
    make_gift(make_donor(), fund, 12_500, received_at=yesterday)  # NewsMatch counts $100 of it (its cap)
    make_gift(make_donor(), fund, 5_000, received_at=yesterday)

    page = client.get("/staff/").get_data(as_text=True)
    assert '<progress id="grant-progress-1" max="50000" value="15000">30%</progress>' in page
    text = page_text(page)
    assert "NewsMatch 2026: $150.00 of $500.00 goal" in text
    assert "Local: $175.00 raised (no goal set)" in text
    assert "Spring drive" not in text  # its window has closed


def test_no_grant_section_without_an_open_program(client):
    sign_in(client, make_staff("viewer"))
    day = local_date(utcnow())
    add_program("Spring drive", "spring-drive", day - timedelta(days=400), day - timedelta(days=40))
    db.session.commit()
    assert dashboard.grant_progress() == []
    assert "Grant programs</h2>" not in client.get("/staff/").get_data(as_text=True)


def test_pending_gifts_never_count(app):
    fund, donor = make_fund(), make_donor()
    db.session.add(Gift(donor=donor, fund=fund, amount_cents=5000, status=GiftStatus.PENDING, tax_deductible=False))
    db.session.commit()
    today = local_date(datetime.now(UTC))
    assert [p.gifts for p in dashboard.period_totals(today)] == [0, 0, 0]
