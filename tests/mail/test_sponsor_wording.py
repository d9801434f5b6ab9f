"""Receipts and statements say which gifts were deductible and through whom; the
not-deductible statement stays on every other gift."""

from __future__ import annotations

from datetime import UTC, datetime

from donations.ledger import funds
from donations.mail.render import render
from tests.factories import make_donor, make_fund, make_gift

SPONSOR = funds.Sponsor("Valley Community Foundation", "12-3456789", "No goods or services were provided.")


def test_a_sponsors_gift_receipt_names_the_sponsor_and_is_deductible(app):
    held = make_fund("held", name="Schools Reporting Fund", sponsor=SPONSOR)
    gift = make_gift(make_donor(), held, 25_000, source="sponsor")
    mail = render("gift_receipt", {"gift_id": gift.id})
    for part in (mail.text, mail.html):
        assert "Valley Community Foundation" in part
        assert "12-3456789" in part
        assert "No goods or services were provided." in part
        assert "not tax deductible" not in part.lower()
    assert "tax deductible as the law allows" in mail.html


def test_a_statement_with_both_kinds_says_which_is_which(app):
    own = make_fund("own", is_default=True)
    held = make_fund("held", name="Schools Reporting Fund", sponsor=SPONSOR)
    donor = make_donor()
    when = datetime(2025, 6, 1, 18, tzinfo=UTC)
    make_gift(donor, held, 25_000, source="sponsor", received_at=when)
    make_gift(donor, own, 5_000, received_at=when)
    mail = render("annual_statement", {"donor_id": donor.id, "year": 2025})
    assert "tax deductible, received by Valley Community Foundation" in mail.text
    assert "EVERY OTHER GIFT IS NOT TAX DEDUCTIBLE" in mail.text
    assert "Every other gift is not tax deductible." in mail.html
    assert "one-time gift, Fiscal sponsor;" in mail.text  # the source in words, never its code


def test_a_statement_of_the_newsrooms_own_gifts_only_keeps_the_plain_statement(app):
    own = make_fund("own", is_default=True)
    donor = make_donor()
    make_gift(donor, own, 5_000, received_at=datetime(2025, 6, 1, 18, tzinfo=UTC))
    mail = render("annual_statement", {"donor_id": donor.id, "year": 2025})
    assert "THESE GIFTS ARE NOT TAX DEDUCTIBLE" in mail.text
    assert "fiscal sponsor" not in mail.text.lower()
