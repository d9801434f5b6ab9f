"""Money: dollars typed by readers become integer cents; the fee cover is exact and minimal."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from donations.money import AmountError, cents_text, cents_to_decimal, fee_to_cover, format_money, parse_dollars

MAX_WHOLE_DOLLARS = 999_999_999  # nine digits, as the parser allows


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("25", 2500),
        ("25.5", 2550),
        ("25.50", 2550),
        ("25.05", 2505),
        ("0.01", 1),
        ("$1,000.00", 100_000),
        ("$ 12", 1200),
        ("  7.25\n", 725),
        ("1,234,567.89", 123_456_789),
        ("1,000", 100_000),
        ("1,000.50", 100_050),
        ("$ 12,345.6", 1_234_560),
        ("999999999.99", 99_999_999_999),
    ],
)
def test_parse_dollars(text, cents):
    assert parse_dollars(text) == cents


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "-5",
        "+5",
        "5.",
        ".5",
        "12.345",
        "1e3",
        "five",
        "5 dollars",
        "$$5",
        "5$",
        "1000000000",  # ten digits of dollars
        "NaN",
        "Infinity",
        "\u0665\u0660",  # Arabic-Indic digits: not ASCII
        "\uff15\uff10",  # full-width digits
        "5\x00",
        "0x10",
        "1_000",
        "12.3.4",
    ],
)
def test_parse_dollars_rejects(text):
    with pytest.raises(AmountError, match="Enter an amount in dollars"):
        parse_dollars(text)


@pytest.mark.parametrize(
    "text", ["20,5", "1,00", "20,50", "$ 7,25", "1,0000", "12,34,567", "1,000,00", ",5", "5,", "1,,000", "1,000,5.00"]
)
def test_parse_dollars_refuses_a_comma_that_is_not_a_thousands_separator(text):
    """Issue 13, finding 4: "20,5" became $205.00. A comma may be a decimal comma: ask, never guess."""
    with pytest.raises(AmountError, match=r"^Use a period for cents, like 20\.50\.$"):
        parse_dollars(text)


@given(st.integers(min_value=0, max_value=MAX_WHOLE_DOLLARS * 100 + 99))
def test_parse_dollars_reads_back_what_was_written(cents):
    dollars, rest = divmod(cents, 100)
    assert parse_dollars(f"{dollars}.{rest:02d}") == cents
    assert parse_dollars(f"${dollars:,}.{rest:02d}") == cents
    if rest == 0:
        assert parse_dollars(str(dollars)) == cents
    if rest % 10 == 0:
        assert parse_dollars(f"{dollars}.{rest // 10}") == cents


@given(st.text(max_size=40))
@example("-0.01")
@example("\u0660")
def test_parse_dollars_gives_cents_or_a_clear_error(text):
    try:
        cents = parse_dollars(text)
    except AmountError as exc:
        assert "Enter an amount" in str(exc) or "Use a period for cents" in str(exc)
    else:
        assert isinstance(cents, int)
        assert 0 <= cents <= MAX_WHOLE_DOLLARS * 100 + 99
        # Whatever was accepted reads as the same money with exact decimals, and any comma in it
        # separates thousands.
        if "," in text:
            whole = text.strip().lstrip("$").strip().split(".")[0]
            assert all(len(group) == 3 for group in whole.split(",")[1:])
        assert Decimal(text.strip().lstrip("$").strip().replace(",", "")) * 100 == cents


@pytest.mark.parametrize(
    ("amount", "percent", "fixed", "fee"),
    [
        (5000, "2.9", 30, 181),  # ceil(5030 / 0.971) = ceil(5180.23) = 5181
        (2500, "2.9", 30, 106),  # ceil(2530 / 0.971) = ceil(2605.56) = 2606
        (10000, "2.9", 30, 330),  # ceil(10030 / 0.971) = ceil(10329.56) = 10330
        (941, "2.9", 30, 59),  # 971 / 0.971 = 1000 exactly: no cent is added by rounding
        (0, "2.9", 30, 31),
        (5000, "0", 0, 0),
        (5000, "0", 30, 30),
        (5000, "2.2", 30, 144),  # ceil(5030 / 0.978) = ceil(5143.15) = 5144
    ],
)
def test_fee_to_cover(amount, percent, fixed, fee):
    assert fee_to_cover(amount, percent, fixed) == fee


def test_fee_to_cover_refuses_negative_amounts_and_bad_rates():
    with pytest.raises(AmountError):
        fee_to_cover(-1, "2.9", 30)
    with pytest.raises(ValueError, match="bad fee percent"):
        fee_to_cover(100, "two point nine", 30)


amounts = st.integers(min_value=0, max_value=10**11)
# Rates as processors quote them: up to two decimals, 0% to 15%.
percents = st.integers(min_value=0, max_value=1500).map(lambda bp: f"{bp // 100}.{bp % 100:02d}")
fixed_fees = st.integers(min_value=0, max_value=500)


def _net(total: int, percent: str, fixed: int) -> Fraction:
    """What the newsroom keeps of `total` after the processor's percent + fixed fee."""
    return total - total * Fraction(percent) / 100 - fixed


@given(amounts, percents, fixed_fees)
def test_fee_cover_leaves_at_least_the_gift_after_the_fee(amount, percent, fixed):
    fee = fee_to_cover(amount, percent, fixed)
    assert isinstance(fee, int)
    assert fee >= fixed
    assert _net(amount + fee, percent, fixed) >= amount


@given(amounts, percents, fixed_fees)
def test_fee_cover_is_the_smallest_that_does(amount, percent, fixed):
    fee = fee_to_cover(amount, percent, fixed)
    assert _net(amount + fee - 1, percent, fixed) < amount


@given(amounts, amounts, percents, fixed_fees)
def test_a_larger_gift_never_needs_a_smaller_total(a, b, percent, fixed):
    low, high = sorted((a, b))
    assert low + fee_to_cover(low, percent, fixed) <= high + fee_to_cover(high, percent, fixed)


def test_format_money():
    assert format_money(123_456) == "$1,234.56"
    assert format_money(5) == "$0.05"
    assert format_money(0) == "$0.00"
    assert format_money(100, "eur") == "€1.00"
    assert cents_to_decimal(1999) == Decimal("19.99")


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (-1, "-0.01"),
        (-5, "-0.05"),
        (99, "0.99"),
        (-100, "-1.00"),
        (-1205, "-12.05"),
        (123_456, "1234.56"),
        (10**20 + 7, "1000000000000000000.07"),
        (-(10**20) - 70, "-1000000000000000000.70"),
    ],
)
def test_cents_text(cents, text):
    assert cents_text(cents) == text


@given(st.integers(min_value=-(10**24), max_value=10**24))
@example(0)
@example(-1)
@example(-100)
def test_cents_text_is_the_decimal_text(cents):
    """Reports write amounts with cents_text; it must match the Decimal they used to write."""
    assert cents_text(cents) == str(cents_to_decimal(cents))


@given(st.integers(min_value=0, max_value=MAX_WHOLE_DOLLARS * 100 + 99))
def test_format_money_reads_back(cents):
    assert parse_dollars(format_money(cents)) == cents
