"""Forms of membership self-service (all with CSRF, like every form here)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
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


class PlanForm(AmountForm):
    """A new amount, frequency and fund; the fund's choices are set by the view (active funds)."""

    frequency = RadioField(
        "How often",
        choices=[SelectChoice("monthly", "Monthly"), SelectChoice("annual", "Annual")],
        validators=[InputRequired("Choose monthly or annual.")],
    )
    fund = SelectField("Fund", validators=[InputRequired("Choose a fund.")])
    confirmed = HiddenField()


class PauseForm(FlaskForm):
    skips = RadioField(
        "Payments to skip",
        choices=[
            SelectChoice("1", "The next payment"),
            SelectChoice("2", "The next 2 payments"),
            SelectChoice("3", "The next 3 payments"),
        ],
        validators=[InputRequired("Choose how many payments to skip.")],
    )


class ConfirmForm(FlaskForm):
    """A button alone (resume, open the card page): the CSRF token is all it carries."""
