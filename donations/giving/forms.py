"""The gift form. Amounts are parsed to cents here; nothing downstream sees a float."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError

from donations.giving.service import AmountOutOfRange, check_amount
from donations.money import AmountError, format_dollars, parse_dollars

FREQUENCY_LABELS = {"one_time": "One time", "monthly": "Monthly", "annual": "Every year"}


def _no_control_characters(form: FlaskForm, field: StringField) -> None:
    if field.data and any(ord(ch) < 32 or ord(ch) == 127 for ch in field.data):
        raise ValidationError("Remove the special characters from this field.")


def _within_limits(cents: int) -> None:
    """Checked with the other fields, so that every error shows at once."""
    try:
        check_amount(cents)
    except AmountOutOfRange as exc:
        raise ValidationError(str(exc)) from None


class GiftForm(FlaskForm):
    frequency = RadioField("How often", default="one_time", validators=[InputRequired()])
    amount_choice = RadioField("Amount", validators=[InputRequired("Choose an amount.")])
    custom_amount = StringField("Other amount, in dollars", validators=[Length(max=20)])
    cover_fee = BooleanField("Cover the processing fee")
    name = StringField(
        "Your name", validators=[DataRequired("Enter your name."), Length(max=200), _no_control_characters]
    )
    email = StringField(
        "Email",
        validators=[InputRequired("Enter your email address."), Length(max=254), Email("Enter a valid email address.")],
    )
    postal_code = StringField("ZIP or postal code", validators=[Optional(), Length(max=20), _no_control_characters])
    on_behalf_of_organization = BooleanField("I am giving on behalf of an organization")
    # No Optional() on the two fields below: it would stop the chain before the checks that
    # require them when their box or dedication is chosen.
    organization = StringField("Organization name", validators=[Length(max=200), _no_control_characters])
    anonymous = BooleanField("Don't publish my name")
    tribute_kind = RadioField(
        "Dedicate this gift",
        choices=[
            SelectChoice("", "No dedication"),
            SelectChoice("honor", "In honor of"),
            SelectChoice("memory", "In memory of"),
        ],
        default="",
        # No Optional(): it would let a blank-looking value past the check against the choices.
    )
    tribute_name = StringField("Name of the person", validators=[Length(max=200), _no_control_characters])
    # Shown only where the newsletter is offered, labelled with its wording (views.py).
    newsletter = BooleanField("Newsletter")
    # A honeypot: people never see it (hidden by CSS and aria-hidden); bots fill it in.
    website = StringField("Leave this empty", validators=[Optional(), Length(max=200)])
    resume = HiddenField()

    def __init__(self, suggested: dict[str, list[int]], frequencies: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suggested = suggested
        self.frequency.choices = [(f, FREQUENCY_LABELS[f]) for f in frequencies]
        amounts = sorted({cents for f in frequencies for cents in suggested.get(f, [])})
        self.amount_choice.choices = [(str(c), format_dollars(c)) for c in amounts] + [("other", "Other amount")]
        self.amount_cents: int | None = None

    def suggested_cents(self) -> int | None:
        """The chosen suggested amount; None for "other" or a value the form does not offer."""
        offered = {value for value, _ in self.amount_choice.choices or [] if value != "other"}
        return int(self.amount_choice.data) if self.amount_choice.data in offered else None

    def validate_amount_choice(self, field: RadioField) -> None:
        # A value that is not offered has already been refused by the field's own check.
        if (cents := self.suggested_cents()) is not None:
            self.amount_cents = cents
            _within_limits(cents)

    def validate_custom_amount(self, field: StringField) -> None:
        if self.amount_choice.data != "other":
            return
        if not (field.data or "").strip():
            raise ValidationError("Enter the amount you would like to give.")
        try:
            self.amount_cents = parse_dollars(field.data)
        except AmountError as exc:
            raise ValidationError(str(exc)) from None
        _within_limits(self.amount_cents)

    def validate_organization(self, field: StringField) -> None:
        if self.on_behalf_of_organization.data and not (field.data or "").strip():
            raise ValidationError("Enter the organization's name, or untick the box above.")

    def validate_tribute_name(self, field: StringField) -> None:
        if self.tribute_kind.data and not (field.data or "").strip():
            raise ValidationError("Enter the name of the person this gift honors.")
