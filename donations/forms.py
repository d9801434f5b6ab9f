"""Form fields and small forms shared by every area's forms: amounts in dollars parsed to
cents, dates staff may use, text without control characters, choices in words."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    Field,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from donations.money import AmountError, parse_dollars


def choices(pairs: list[tuple[Any, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


FREQUENCY_CHOICES = [("one_time", "One time"), ("monthly", "Monthly"), ("annual", "Annual")]


SOURCE_CHOICES = [
    ("stripe", "Online (Stripe)"),
    ("check", "Check"),
    ("cash", "Cash"),
    ("other", "Other"),
    ("sponsor", "Fiscal sponsor"),
]
# How a gift came (ledger.models.GiftVehicle), in words.
VEHICLE_CHOICES = [
    ("personal", "Personal"),
    ("donor_advised_fund", "Donor-advised fund"),
    ("family_foundation", "Family foundation"),
    ("business", "Business"),
    ("foundation", "Foundation"),
    ("government", "Government"),
]


SOURCE_WORDS = dict(SOURCE_CHOICES)
FREQUENCY_WORDS = dict(FREQUENCY_CHOICES)
VEHICLE_WORDS = dict(VEHICLE_CHOICES)


def source_words(code: str) -> str:
    return SOURCE_WORDS.get(code, code)


def frequency_words(code: str) -> str:
    return FREQUENCY_WORDS.get(code, code)


def vehicle_words(code: str) -> str:
    return VEHICLE_WORDS.get(code, code)


# Dates staff may search by: a newsroom's records start after 2000, and far-off years would
# overflow the time-zone arithmetic (9999-12-31 has no next day). Offline gifts need no bound:
# the ledger refuses a future date with its own message.
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2100, 12, 31)


def supported_date(form: Any, field: Field) -> None:
    if field.data is not None and not FIRST_DATE <= field.data <= LAST_DATE:
        raise ValidationError(f"Enter a date from {FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}.")


def no_control_characters(form: Any, field: Field) -> None:
    if field.data and any((ord(ch) < 32 and ch not in "\r\n\t") or ord(ch) == 127 for ch in field.data):
        raise ValidationError("Remove the special characters from this field.")


class DollarsField(StringField):
    """Dollars typed by a person ("25", "1,000.50"), held as integer cents in `.cents`."""

    cents: int | None = None

    def process_formdata(self, valuelist: list[Any]) -> None:
        super().process_formdata(valuelist)
        self.cents = None
        text = (self.data or "").strip()
        if text:
            try:
                self.cents = parse_dollars(text)
            except AmountError as exc:
                raise ValueError(str(exc)) from None


def positive(form: Any, field: DollarsField) -> None:
    if field.cents is not None and field.cents <= 0:
        raise ValidationError("The amount must be more than zero.")


class GetForm(FlaskForm):
    """Filters in a query string: no CSRF token (they change nothing)."""

    class Meta:
        csrf = False


class ButtonForm(FlaskForm):
    """A form that is only a button: it carries the CSRF token."""
