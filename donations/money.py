"""Money is integer cents plus a currency code. Never floats."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from babel.numbers import format_currency

# ASCII digits only (as forms.js reads them): other scripts' digits are not an amount here.
_AMOUNT = re.compile(r"\$?\s*(\d{1,9})(?:\.(\d{1,2}))?", re.ASCII)
# Commas only as thousands separators, in groups of three ("1,000", "1,234,567.89"): a comma
# anywhere else ("20,5", "1,00") may be a decimal comma, and guessing would move money tenfold.
_GROUPED = re.compile(r"\$?\s*\d{1,3}(?:,\d{3})+(?:\.\d*)?", re.ASCII)
_COMMA_NUMBER = re.compile(r"\$?\s*[\d,]*\d[\d,]*(?:\.\d*)?", re.ASCII)
_ENTER_AN_AMOUNT = "Enter an amount in dollars, like 25 or 25.50."


class AmountError(ValueError):
    pass


def parse_dollars(text: str) -> int:
    """'25', '25.5', '$1,000.00' -> cents. Rejects negatives, fractions of a cent, junk, and a
    comma that is not a thousands separator ('20,5' is not $205)."""
    cleaned = text.strip()
    if "," in cleaned:
        if _GROUPED.fullmatch(cleaned):
            cleaned = cleaned.replace(",", "")
        elif _COMMA_NUMBER.fullmatch(cleaned):
            raise AmountError("Use a period for cents, like 20.50.")
        else:
            raise AmountError(_ENTER_AN_AMOUNT)
    match = _AMOUNT.fullmatch(cleaned)
    if not match:
        raise AmountError(_ENTER_AN_AMOUNT)
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(fraction)


def fee_to_cover(amount_cents: int, percent: str, fixed_cents: int) -> int:
    """The extra a donor adds so the newsroom nets `amount_cents` after the processor's fee.

    total = (amount + fixed) / (1 - rate), rounded up to the cent; the extra is total - amount.
    """
    if amount_cents < 0:
        raise AmountError("amount must not be negative")
    try:
        rate = Decimal(percent) / 100
    except InvalidOperation as exc:  # a misconfiguration, not bad input
        raise ValueError(f"bad fee percent {percent!r}") from exc
    total = ((Decimal(amount_cents) + fixed_cents) / (1 - rate)).to_integral_value(ROUND_CEILING)
    return int(total) - amount_cents


def cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def cents_text(cents: int) -> str:
    """'-12.05' for -1205: the text of `cents_to_decimal`, by integer arithmetic (reports write
    millions of amounts, and a Decimal costs several times as much)."""
    if cents < 0:
        return f"-{-cents // 100}.{-cents % 100:02d}"
    return f"{cents // 100}.{cents % 100:02d}"


def format_money(cents: int, currency: str = "usd", locale: str = "en_US") -> str:
    return format_currency(cents_to_decimal(cents), currency.upper(), locale=locale)


def format_dollars(cents: int, currency: str = "usd", locale: str = "en_US") -> str:
    """ "$25" for 2500, "$1,000" for 100000: whole amounts without cents (the gift page's
    buttons); any other amount as format_money writes it ("$37.50")."""
    if cents % 100:
        return format_money(cents, currency, locale)
    return format_currency(cents // 100, currency.upper(), locale=locale, format="\xa4#,##0", currency_digits=False)
