"""Grant program forms: dollars parsed to cents and dates to `date` here."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from donations.forms import SOURCE_CHOICES, DollarsField, GetForm, choices, no_control_characters, positive
from donations.grants.models import REPORT_FORMATS, ProgramSettings
from donations.grants.rules import RecurringRule
from donations.money import cents_text

RULE_CHOICES = choices(
    [
        (RecurringRule.INSTALLMENTS.value, "Installments: each installment paid in the window counts"),
        (
            RecurringRule.NEW_RECURRING_X12.value,
            "New recurring x 12 (NewsMatch): a donor's first membership started in the window counts 12 x its "
            "monthly amount; a monthly membership raised in the window counts 12 x the increase",
        ),
    ]
)


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ProgramForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired("Name the program."), Length(max=200), no_control_characters])
    slug = StringField(
        "Short name for addresses and the command line (letters, digits, dashes)",
        validators=[InputRequired("Choose a short name."), Length(max=80)],
    )
    first_day = DateField("First day of the window", validators=[InputRequired("Enter the first day.")])
    last_day = DateField("Last day of the window (inclusive)", validators=[InputRequired("Enter the last day.")])
    cap = DollarsField("Per-donor cap in dollars (empty: no cap)", validators=[Optional(), positive])
    goal = DollarsField("Local-match goal in dollars (optional)", validators=[Optional(), positive])
    funds = CheckboxesField("Funds counted (none ticked: every fund)", coerce=int, validators=[Optional()])
    sources = CheckboxesField(
        "Sources counted", choices=choices(SOURCE_CHOICES), validators=[InputRequired("Count at least one source.")]
    )
    individuals_only = BooleanField("Individuals only (gifts given for organizations are excluded)", default=True)
    recurring_rule = RadioField("Recurring gifts", choices=RULE_CHOICES, default=RecurringRule.INSTALLMENTS.value)
    anonymous_limit = DollarsField(
        "Largest anonymous gift counted, in dollars (empty: no limit; NewsMatch: 5,000)",
        validators=[Optional(), positive],
    )
    program_cap = DollarsField(
        "Program-level match cap in dollars: the most the program matches in all (empty: none)",
        validators=[Optional(), positive],
    )
    deduct_fair_market_value = BooleanField(
        "Deduct the fair market value of what donors received (tickets, merchandise)", default=True
    )
    exclusive_with = StringField(
        "Exclusive with: other programs' short names, separated by commas (a gift counts in one of them only)",
        validators=[Optional(), Length(max=500), no_control_characters],
    )
    priority = IntegerField(
        "Priority among exclusive programs (lower first; empty: 100)",
        validators=[Optional(), NumberRange(min=0, max=1000)],
    )
    local_postal_prefixes = StringField(
        "Local area: postal-code prefixes, separated by commas (e.g. 972, 973)",
        validators=[Optional(), Length(max=500), no_control_characters],
    )
    local_states = StringField(
        "Local area: states, separated by commas (e.g. OR)",
        validators=[Optional(), Length(max=500), no_control_characters],
    )
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000), no_control_characters])
    public_fund = SelectField("Show the progress bar on this fund's gift page", coerce=int)

    def validate_last_day(self, field: DateField) -> None:
        if self.first_day.data and field.data and field.data < self.first_day.data:
            raise ValidationError("The last day comes before the first day.")

    @staticmethod
    def data_of(settings: ProgramSettings) -> dict[str, Any]:
        """The form's fields filled in from a program's settings (dollars as typed, 0: no fund)."""
        return {
            "name": settings.name,
            "slug": settings.slug,
            "first_day": settings.first_day,
            "last_day": settings.last_day,
            "cap": "" if settings.cap_cents is None else cents_text(settings.cap_cents),
            "goal": "" if settings.goal_cents is None else cents_text(settings.goal_cents),
            "funds": list(settings.fund_ids or ()),
            "sources": list(settings.sources),
            "individuals_only": settings.individuals_only,
            "recurring_rule": settings.recurring_rule,
            "notes": settings.notes,
            "public_fund": settings.public_fund_id or 0,
            "anonymous_limit": _dollars_text(settings.anonymous_limit_cents),
            "program_cap": _dollars_text(settings.program_cap_cents),
            "deduct_fair_market_value": settings.deduct_fair_market_value,
            "exclusive_with": ", ".join(settings.exclusive_with),
            "priority": settings.priority,
            "local_postal_prefixes": ", ".join(settings.local_postal_prefixes),
            "local_states": ", ".join(settings.local_states),
        }

    def settings(self) -> ProgramSettings:
        """What was submitted (validated by `validate_on_submit` first)."""
        return ProgramSettings(
            name=self.name.data or "",
            slug=(self.slug.data or "").strip(),
            first_day=self.first_day.data,
            last_day=self.last_day.data,
            cap_cents=self.cap.cents,
            goal_cents=self.goal.cents,
            fund_ids=tuple(self.funds.data) or None,
            sources=tuple(self.sources.data or ()),
            individuals_only=bool(self.individuals_only.data),
            recurring_rule=self.recurring_rule.data,
            notes=self.notes.data or "",
            public_fund_id=self.public_fund.data or None,
            anonymous_limit_cents=self.anonymous_limit.cents,
            program_cap_cents=self.program_cap.cents,
            deduct_fair_market_value=bool(self.deduct_fair_market_value.data),
            exclusive_with=_listed(self.exclusive_with.data),
            priority=100 if self.priority.data is None else self.priority.data,
            local_postal_prefixes=_listed(self.local_postal_prefixes.data),
            local_states=_listed(self.local_states.data),
        )


def _listed(text: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def _dollars_text(cents: int | None) -> str:
    return "" if cents is None else cents_text(cents)


class ReportFilterForm(GetForm):
    """A report's span, year and page, from the query string."""

    first_day = DateField("From", validators=[Optional()])
    last_day = DateField("To", validators=[Optional()])
    year = IntegerField("Year", validators=[Optional(), NumberRange(1900, 9999)])
    page = IntegerField("Page", validators=[Optional(), NumberRange(1, 1_000_000)])


class ExportForm(FlaskForm):
    format = RadioField("Format", choices=choices([(f, f.upper()) for f in REPORT_FORMATS]), default="csv")
    first_day = DateField("From", validators=[Optional()])
    last_day = DateField("To", validators=[Optional()])
    year = IntegerField("Year", validators=[Optional(), NumberRange(1900, 9999)])


class PledgeForm(FlaskForm):
    """A local-match pledge; its document is read from the request's files by the view."""

    funder_name = StringField(
        "Funder (the foundation, business or person who pledged)",
        validators=[InputRequired("Name the funder."), Length(max=200), no_control_characters],
    )
    amount = DollarsField("Amount pledged, in dollars", validators=[InputRequired("Enter the amount."), positive])
    pledged_on = DateField("Date of the pledge", validators=[InputRequired("Enter the date on the document.")])


class FunderLinkForm(FlaskForm):
    label = StringField("For whom (shown to staff only, e.g. the program officer)", validators=[Length(max=200)])
    days = IntegerField(
        "Open for how many days", default=30, validators=[InputRequired("Say how many days."), NumberRange(1, 3650)]
    )
