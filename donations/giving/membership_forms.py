"""Forms of membership self-service (all with CSRF, like every form here)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Email, InputRequired, Length, ValidationError

from donations.money import AmountError, parse_dollars


class LinkRequestForm(FlaskForm):
    email = StringField(
        "Your email address",
        validators=[InputRequired("Enter your email address."), Length(max=254), Email("Enter a valid email address.")],
    )


class AmountForm(FlaskForm):
    amount = StringField("New amount, in dollars", validators=[InputRequired("Enter an amount."), Length(max=20)])

    def validate_amount(self, field: StringField) -> None:
        try:
            self.amount_cents = parse_dollars(field.data or "")
        except AmountError as exc:
            raise ValidationError(str(exc)) from None


class CardForm(FlaskForm):
    card_number = StringField("Card number", validators=[InputRequired("Enter a card number."), Length(max=30)])

    @property
    def digits(self) -> str:
        return "".join(ch for ch in self.card_number.data or "" if ch.isdigit())
