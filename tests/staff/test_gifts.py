"""The gift list (filters, keyset paging), a gift's page, refunds from the console, and
changing a gift's fund or dedication."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus, Reversal
from donations.payments.models import RefundRequest
from donations.staff import queries
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, page_text
from tests.staff.support import make_staff, sign_in


@pytest.fixture
def finance(client):
    user = make_staff("finance")
    sign_in(client, user)
    return user


def listed_ids(client, query: str = "") -> list[int]:
    response = client.get(f"/staff/gifts{query}")
    assert response.status_code == 200, page_text(response.get_data(as_text=True))
    return [
        int(part.split('"')[0])
        for part in response.get_data(as_text=True).split('href="/staff/gifts/')[1:]
        if not part.startswith("export")  # the download links
    ]


def test_the_list_shows_received_gifts_newest_first(client, finance):
    fund = make_fund("general")
    donor = make_donor("pat@example.org", name="Pat")
    now = datetime.now(UTC)
    older = make_gift(donor, fund, 2500, received_at=now - timedelta(days=2))
    newer = make_gift(donor, fund, 7500, received_at=now - timedelta(hours=1))
    pending = Gift(donor=donor, fund=fund, amount_cents=1000, status=GiftStatus.PENDING, tax_deductible=False)
    db.session.add(pending)
    db.session.commit()
    assert listed_ids(client) == [newer.id, older.id]
    text = page_text(client.get("/staff/gifts").get_data(as_text=True))
    assert "$75.00" in text and "Pat" in text and "pat@example.org" in text


def test_each_filter_narrows_the_list(client, finance):
    general, forums = make_fund("general"), make_fund("forums")
    pat, sam = make_donor("Pat@Example.org"), make_donor("sam@example.org")
    # 23:30 Pacific on Dec 31 is 07:30 UTC on Jan 1: a December 31 gift, locally.
    new_years_eve = make_gift(pat, general, 5000, received_at=datetime(2026, 1, 1, 7, 30, tzinfo=UTC))
    new_year = make_gift(pat, general, 5000, received_at=datetime(2026, 1, 1, 8, 30, tzinfo=UTC))
    check = make_gift(sam, forums, 25000, received_at=datetime(2025, 12, 15, 18, tzinfo=UTC), source="check")
    monthly = make_gift(sam, general, 1000, received_at=datetime(2025, 12, 20, 18, tzinfo=UTC), frequency="monthly")
    refunded = make_gift(
        pat, forums, 10000, received_at=datetime(2025, 11, 1, 18, tzinfo=UTC), status=GiftStatus.REFUNDED
    )

    assert listed_ids(client, "?first=2025-12-31&last=2025-12-31") == [new_years_eve.id]
    assert listed_ids(client, "?first=2026-01-01") == [new_year.id]
    assert listed_ids(client, "?last=2025-12-20") == [monthly.id, check.id, refunded.id]
    assert listed_ids(client, f"?fund={forums.id}") == [check.id, refunded.id]
    assert listed_ids(client, "?source=check") == [check.id]
    assert listed_ids(client, "?frequency=monthly") == [monthly.id]
    assert listed_ids(client, "?status=refunded") == [refunded.id]
    assert listed_ids(client, "?min_amount=100&max_amount=250") == [check.id, refunded.id]
    assert listed_ids(client, "?email=PAT%40example.ORG") == [new_year.id, new_years_eve.id, refunded.id]
    assert listed_ids(client, f"?email=pat%40example.org&fund={general.id}&first=2026-01-01") == [new_year.id]


@pytest.mark.parametrize(
    "query",
    [
        "?first=2026-02-30",
        "?first=2026-03-01&last=2026-02-01",
        "?min_amount=ten",
        "?min_amount=-5",
        "?min_amount=50&max_amount=10",
        "?status=lost",
        "?after=not-a-cursor",
        "?after=" + "9" * 60,
        "?email=" + "a" * 400,
    ],
)
def test_bad_filters_are_a_clear_400(client, finance, query):
    make_gift(make_donor(), make_fund())
    response = client.get(f"/staff/gifts{query}")
    assert response.status_code == 400
    assert "field-error" in response.get_data(as_text=True) or "form-errors" in response.get_data(as_text=True)


def test_keyset_pages_cover_every_gift_once_in_order_even_with_equal_times(app):
    fund, donor = make_fund(), make_donor()
    moment = datetime(2026, 5, 1, 12, tzinfo=UTC)
    # Three gifts share each timestamp: only the id breaks the tie.
    gifts = [make_gift(donor, fund, 1000 + n, received_at=moment - timedelta(minutes=n // 3)) for n in range(14)]
    expected = [g.id for g in sorted(gifts, key=lambda g: (g.received_at, g.id), reverse=True)]
    seen, cursor, pages = [], None, 0
    while True:
        page = queries.gift_page(queries.GiftFilters(), cursor, page_size=4)
        seen += [row.id for row in page.rows]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = queries.GiftCursor.decode(page.next_cursor.encode())
    assert seen == expected and pages == 4


def test_next_page_link_follows_the_filters(client, finance):
    fund, donor = make_fund(), make_donor("many@example.org")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(queries.PAGE_SIZE + 5):
        make_gift(donor, fund, 500 + n, received_at=start + timedelta(hours=n), source="check")
    make_gift(donor, fund, 999, received_at=start, source="cash")
    first = client.get("/staff/gifts?source=check").get_data(as_text=True)
    next_url = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert parse_qs(urlsplit(next_url).query)["source"] == ["check"]
    second_ids = listed_ids(client, "?" + urlsplit(next_url).query)
    assert len(listed_ids(client, "?source=check")) == queries.PAGE_SIZE
    assert len(second_ids) == 5
    assert 'rel="next"' not in client.get(next_url).get_data(as_text=True)


def test_a_gift_page_shows_everything(client, finance):
    fund = make_fund("forums", name="Community Forums")
    donor = make_donor("lee@example.org", name="Lee Reader")
    donor.stripe_customer_id = "cus_Test123"
    gift = make_gift(
        donor,
        fund,
        5181,
        fee_covered_cents=181,
        stripe_payment_intent_id="pi_Test123",
        stripe_charge_id="ch_Test123",
        tribute_kind="memory",
        tribute_name="Grandma Lou",
        organization="Corner Bakery LLC",
        card_last4="4242",
    )
    db.session.add(
        Reversal(
            gift_id=gift.id, kind="refund", amount_cents=1000, reversed_at=datetime.now(UTC), stripe_key="refund:re_1"
        )
    )
    db.session.commit()
    page = client.get(f"/staff/gifts/{gift.id}").get_data(as_text=True)
    text = page_text(page)
    for phrase in (
        "$51.81",
        "$1.81 covers the processing fee",
        "Reversed $10.00; net $41.81",
        "No (the newsroom is not a charity)",
        "Community Forums",
        "In memory of Grandma Lou",
        "Corner Bakery LLC",
        "card ending 4242",
        "refund:re_1",
    ):
        assert phrase in text, phrase
    assert 'href="https://dashboard.stripe.com/payments/pi_Test123"' in page
    assert 'href="https://dashboard.stripe.com/customers/cus_Test123"' in page


def test_a_missing_gift_is_404(client, finance):
    assert client.get("/staff/gifts/999999").status_code == 404


def local_gateway_gift(amount_cents: int = 10000) -> Gift:
    """A gift paid through the local gateway, which refunds by sending signed Stripe events."""
    return make_gift(
        make_donor("refund.me@example.org"),
        make_fund("general", is_default=True),
        amount_cents,
        stripe_payment_intent_id="pi_local_" + "a1" * 12,
        stripe_checkout_session_id="cs_local_refund_test",
    )


def test_a_partial_refund_from_the_console_becomes_a_reversal(client, finance):
    gift = local_gateway_gift()
    token = csrf_token(client, f"/staff/gifts/{gift.id}")
    data = {"csrf_token": token, "amount": "30.00", "reason": "Gave twice"}
    # First the confirmation: the amount and what is left after; nothing is refunded yet.
    confirm = client.post(f"/staff/gifts/{gift.id}/refund", data=data)
    assert confirm.status_code == 200
    text = page_text(confirm.get_data(as_text=True))
    assert "Refund $30.00 of gift" in text and "Left to refund after $70.00" in text
    assert db.session.scalar(select(func.count()).select_from(RefundRequest)) == 0
    response = client.post(f"/staff/gifts/{gift.id}/refund", data={**data, "confirmed": "yes"})
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    db.session.expire_all()
    (reversal,) = db.session.scalars(select(Reversal).where(Reversal.gift_id == gift.id)).all()
    assert (reversal.kind, reversal.amount_cents) == ("refund", 3000)
    assert db.session.get(Gift, gift.id).status == GiftStatus.PARTIALLY_REFUNDED
    text = page_text(client.get(f"/staff/gifts/{gift.id}").get_data(as_text=True))
    assert "of $30.00 requested" in text
    assert "Reversed $30.00; net $70.00" in text
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "gift.refund_requested")).one()
    assert audit.actor == finance.email and audit.details["amount_cents"] == 3000
    # What is left can be refunded; more than that cannot.
    over = client.post(
        f"/staff/gifts/{gift.id}/refund", data={"csrf_token": token, "amount": "70.01", "reason": "Too much"}
    )
    assert over.status_code == 400
    assert "The refund was not made" in page_text(over.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(Reversal)) == 1


def test_a_refund_needs_a_reason_and_a_sane_amount(client, finance):
    gift = local_gateway_gift()
    token = csrf_token(client, f"/staff/gifts/{gift.id}")
    for data in ({"amount": "10", "reason": ""}, {"amount": "-3", "reason": "x"}, {"amount": "0", "reason": "x"}):
        response = client.post(f"/staff/gifts/{gift.id}/refund", data={"csrf_token": token, **data})
        assert response.status_code == 400, data
    assert db.session.scalar(select(func.count()).select_from(RefundRequest)) == 0


def test_changing_a_gifts_fund_and_dedication_is_audited_with_before_and_after(client, finance):
    general, forums = make_fund("general"), make_fund("forums")
    gift = make_gift(make_donor(), general, 5000)
    token = csrf_token(client, f"/staff/gifts/{gift.id}")
    data = {"csrf_token": token, "fund": forums.id, "tribute_kind": "honor", "tribute_name": "Ms. Ortiz"}
    assert client.post(f"/staff/gifts/{gift.id}/designation", data={**data, "reason": ""}).status_code == 400
    response = client.post(
        f"/staff/gifts/{gift.id}/designation", data={**data, "reason": "Donor's letter named the forums fund"}
    )
    assert response.status_code == 303
    db.session.expire_all()
    changed = db.session.get(Gift, gift.id)
    assert (changed.fund_id, changed.tribute_kind, changed.tribute_name) == (forums.id, "honor", "Ms. Ortiz")
    assert changed.amount_cents == 5000
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "gift.edit")).one()
    assert entry.details["before"] == {
        "fund_id": general.id,
        "fund": "general",
        "tribute_kind": None,
        "tribute_name": None,
    }
    assert entry.details["after"]["fund"] == "forums"
    assert entry.note == "Donor's letter named the forums fund"
    assert entry.target_id == str(gift.id) and entry.staff_user_id == finance.id
    history = page_text(client.get(f"/staff/gifts/{gift.id}").get_data(as_text=True))
    assert "gift.edit" in history and "Donor's letter named the forums fund" in history
    # The same again changes nothing and is refused.
    again = client.post(f"/staff/gifts/{gift.id}/designation", data={**data, "reason": "again"})
    assert again.status_code == 400 and "Nothing changed" in page_text(again.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_a_dedication_needs_a_name(client, finance):
    fund = make_fund()
    gift = make_gift(make_donor(), fund)
    token = csrf_token(client, f"/staff/gifts/{gift.id}")
    response = client.post(
        f"/staff/gifts/{gift.id}/designation",
        data={"csrf_token": token, "fund": fund.id, "tribute_kind": "memory", "tribute_name": " ", "reason": "x"},
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Gift, gift.id).tribute_kind is None


def test_a_script_in_a_donor_name_is_shown_as_text(client, finance):
    donor = make_donor("xss@example.org", name="<script>alert(1)</script>")
    gift = make_gift(donor, make_fund(), tribute_kind="honor", tribute_name="<img src=x onerror=alert(1)>")
    for path in ("/staff/gifts", f"/staff/gifts/{gift.id}", f"/staff/donors/{donor.id}", "/staff/donors?q=xss"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


def test_local_dates_filter_by_the_newsroom_zone(app):
    fund, donor = make_fund(), make_donor()
    gift = make_gift(donor, fund, received_at=datetime(2026, 3, 8, 9, 59, tzinfo=UTC))  # 01:59 PST, Mar 8
    page = queries.gift_page(queries.GiftFilters(first=date(2026, 3, 8), last=date(2026, 3, 8)))
    assert [row.id for row in page.rows] == [gift.id]
    assert queries.gift_page(queries.GiftFilters(last=date(2026, 3, 7))).rows == []


def unpaid_gift(donor, fund, status: str, started: datetime) -> Gift:
    gift = Gift(donor=donor, fund=fund, amount_cents=1000, status=status, tax_deductible=False, created_at=started)
    db.session.add(gift)
    db.session.commit()
    return gift


def test_unpaid_checkouts_are_listed_by_status_newest_started_first(client, finance):
    """Issue 13, finding 5: ?status=pending and ?status=failed showed nothing, although a donor
    page listed 12 pending gifts."""
    fund = make_fund("general")
    donor = make_donor("pat@example.org", name="Pat")
    now = datetime.now(UTC)
    unpaid = {}
    for status in (GiftStatus.PENDING, GiftStatus.FAILED, GiftStatus.EXPIRED):
        unpaid[status] = [unpaid_gift(donor, fund, status, now - timedelta(hours=hours)) for hours in (5, 1, 3)]
    paid = make_gift(donor, fund, 2500, received_at=now)
    for status, gifts in unpaid.items():
        newest_first = [g.id for g in sorted(gifts, key=lambda g: g.created_at, reverse=True)]
        assert listed_ids(client, f"?status={status}") == newest_first
        page = page_text(client.get(f"/staff/gifts?status={status}").get_data(as_text=True))
        assert "Checkouts never paid" in page and "Started" in page
    assert listed_ids(client) == [paid.id]  # the list of gifts received is unchanged
    # Paged by when they started, and filtered by that date.
    page = queries.gift_page(queries.GiftFilters(status="pending"), page_size=2)
    rest = queries.gift_page(queries.GiftFilters(status="pending"), page.next_cursor, page_size=2)
    assert [r.id for r in page.rows + rest.rows] == listed_ids(client, "?status=pending")
    today = now.astimezone(UTC).date()
    assert len(listed_ids(client, f"?status=expired&first={today + timedelta(days=2)}")) == 0


def test_a_donor_page_hides_unpaid_checkouts_and_dates_the_donor_by_the_first_paid_gift(client, finance):
    """Issue 13, finding 5: "Donor since" showed an abandoned checkout's time, and the page was
    cluttered with them."""
    fund = make_fund("general")
    donor = make_donor("pat@example.org", name="Pat")
    donor.created_at = datetime(2025, 1, 10, 20, tzinfo=UTC)
    db.session.commit()
    abandoned = [unpaid_gift(donor, fund, GiftStatus.EXPIRED, donor.created_at) for _ in range(12)]
    paid = make_gift(donor, fund, 2500, received_at=datetime(2026, 3, 5, 20, tzinfo=UTC))
    page = client.get(f"/staff/donors/{donor.id}").get_data(as_text=True)
    assert f'href="/staff/gifts/{paid.id}"' in page
    assert not any(f'href="/staff/gifts/{gift.id}"' in page for gift in abandoned)
    text = page_text(page)
    since = text.split("Donor since")[1][:30]
    assert "2026" in since and "2025" not in since
    assert "Show 12 checkouts never paid" in text
    everything = client.get(f"/staff/donors/{donor.id}?unpaid=1").get_data(as_text=True)
    assert all(f'href="/staff/gifts/{gift.id}"' in everything for gift in [*abandoned, paid])
