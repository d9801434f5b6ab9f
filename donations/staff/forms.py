"""Staff console forms. Amounts are parsed to cents and dates to `date` here; a form that does not
validate is answered with its messages and a 400, and nothing is written."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional, ValidationError

from donations.accounts.models import Role
from donations.extensions import MAX_ROW_ID
from donations.forms import (
    FREQUENCY_CHOICES,
    SOURCE_CHOICES,
    VEHICLE_CHOICES,
    DollarsField,
    GetForm,
    choices,
    no_control_characters,
    positive,
    supported_date,
)
from donations.ledger.funds import EIN, Sponsor
from donations.ledger.models import GiftSource, GiftStatus
from donations.money import AmountError, parse_dollars

OFFLINE_SOURCE_CHOICES = [choice for choice in SOURCE_CHOICES if choice[0] != GiftSource.STRIPE]
STATUS_CHOICES = [(status.value, status.value.replace("_", " ").capitalize()) for status in GiftStatus]
TRIBUTE_CHOICES = [("", "No dedication"), ("honor", "In honor of"), ("memory", "In memory of")]
ROLE_CHOICES = [
    (Role.ADMIN.value, "Admin: everything, manages staff"),
    (Role.FINANCE.value, "Finance: gifts, refunds, offline gifts, exports"),
    (Role.VIEWER.value, "Viewer: read only"),
]


# --- Sign-in and account -----------------------------------------------------------------------


class SignInForm(FlaskForm):
    email = StringField("Email", validators=[InputRequired("Enter your email address."), Length(max=320)])
    password = PasswordField("Password", validators=[InputRequired("Enter your password."), Length(max=1000)])


class CodeForm(FlaskForm):
    code = StringField(
        "6-digit code from your authenticator app",
        validators=[InputRequired("Enter the code."), Length(max=12)],
    )


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired("Enter your current password.")])
    new = PasswordField(
        "New password (at least 12 characters)",
        validators=[
            InputRequired("Choose a new password."),
            Length(min=12, max=1000, message="Use at least 12 characters."),
        ],
    )
    confirm = PasswordField("New password again", validators=[InputRequired("Type the new password again.")])

    def validate_confirm(self, field: PasswordField) -> None:
        if field.data != self.new.data:
            raise ValidationError("The two new passwords differ.")


# --- Gifts -------------------------------------------------------------------------------------


class GiftFilterForm(GetForm):
    first = DateField("Received from", validators=[Optional(), supported_date])
    last = DateField("Received to", validators=[Optional(), supported_date])
    fund = SelectField("Fund", coerce=str, validators=[Optional()])
    source = SelectField("Source", choices=choices([("", "Any source"), *SOURCE_CHOICES]), validators=[Optional()])
    frequency = SelectField(
        "Frequency", choices=choices([("", "Any frequency"), *FREQUENCY_CHOICES]), validators=[Optional()]
    )
    status = SelectField("Status", choices=choices([("", "Any status"), *STATUS_CHOICES]), validators=[Optional()])
    min_amount = DollarsField("At least ($)", validators=[Optional(), Length(max=20)])
    max_amount = DollarsField("At most ($)", validators=[Optional(), Length(max=20)])
    email = StringField("Donor email", validators=[Optional(), Length(max=320), no_control_characters])
    after = StringField(validators=[Optional(), Length(max=60)])

    def validate_last(self, field: DateField) -> None:
        if field.data and self.first.data and field.data < self.first.data:
            raise ValidationError("The end date is before the start date.")

    def validate_max_amount(self, field: DollarsField) -> None:
        if field.cents is not None and self.min_amount.cents is not None and field.cents < self.min_amount.cents:
            raise ValidationError("The maximum is below the minimum.")


class RefundForm(FlaskForm):
    amount = DollarsField(
        "Amount to refund ($; leave empty for everything not yet refunded)",
        validators=[Optional(), Length(max=20), positive],
    )
    reason = TextAreaField(
        "Reason (kept in the audit log)",
        validators=[InputRequired("Say why the gift is refunded."), Length(max=500), no_control_characters],
    )
    # Set by the confirmation page: without it the refund is only shown, never made.
    confirmed = HiddenField()


class DesignationForm(FlaskForm):
    fund = SelectField("Fund", coerce=int, validators=[InputRequired()])
    tribute_kind = SelectField("Dedication", choices=choices(TRIBUTE_CHOICES), validators=[Optional()])
    tribute_name = StringField("Name of the person", validators=[Length(max=200), no_control_characters])
    reason = TextAreaField(
        "Reason for the change (kept in the audit log)",
        validators=[InputRequired("Say why the gift is changed."), Length(max=500), no_control_characters],
    )


# --- Donors ------------------------------------------------------------------------------------


class DonorSearchForm(GetForm):
    q = StringField(
        "Name, email, organization or postal code",
        validators=[Optional(), Length(max=200), no_control_characters],
    )


class DonorEditForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=200), no_control_characters])
    email = StringField(
        "Email",
        validators=[InputRequired("Enter the donor's email address."), Length(max=320), no_control_characters],
    )
    organization = StringField("Organization", validators=[Optional(), Length(max=200), no_control_characters])
    address_line1 = StringField("Street address", validators=[Optional(), Length(max=200), no_control_characters])
    address_line2 = StringField("Address line 2", validators=[Optional(), Length(max=200), no_control_characters])
    city = StringField("City", validators=[Optional(), Length(max=100), no_control_characters])
    region = StringField("State or region", validators=[Optional(), Length(max=100), no_control_characters])
    postal_code = StringField("Postal code", validators=[Optional(), Length(max=20), no_control_characters])
    country = StringField(
        "Country (two letters, like US)", validators=[Optional(), Length(max=2), no_control_characters]
    )
    contact_by_email = BooleanField("Fundraising email (appeals, newsletters) is welcome")
    contact_by_mail = BooleanField("Postal mail (appeals, newsletters) is welcome")


class MergeForm(FlaskForm):
    duplicate = IntegerField(
        "Donor number of the duplicate to merge into this donor",
        validators=[InputRequired("Enter the duplicate's donor number."), NumberRange(min=1, max=MAX_ROW_ID)],
    )
    # Set by the confirmation page, which shows both donors and what moves.
    confirmed = HiddenField()


# --- Offline gifts -----------------------------------------------------------------------------


class _DonorFields:
    """Shared by the single and batch forms."""

    email = StringField("Email", validators=[Optional(), Length(max=254), Email("Enter a valid email address.")])
    name = StringField("Name", validators=[Optional(), Length(max=200), no_control_characters])
    postal_code = StringField("Postal code", validators=[Optional(), Length(max=20), no_control_characters])


class OfflineGiftForm(FlaskForm):
    donor_id = IntegerField("Existing donor number", validators=[Optional(), NumberRange(min=1, max=MAX_ROW_ID)])
    email = _DonorFields.email
    name = _DonorFields.name
    organization = StringField(
        "Organization (when the gift is on its behalf)", validators=[Optional(), Length(max=200), no_control_characters]
    )
    address_line1 = StringField("Street address", validators=[Optional(), Length(max=200), no_control_characters])
    city = StringField("City", validators=[Optional(), Length(max=100), no_control_characters])
    region = StringField("State", validators=[Optional(), Length(max=100), no_control_characters])
    postal_code = _DonorFields.postal_code
    source = SelectField("Kind", choices=choices(OFFLINE_SOURCE_CHOICES), default="check", validators=[InputRequired()])
    amount = DollarsField("Amount ($)", validators=[InputRequired("Enter the amount."), Length(max=20), positive])
    fund = SelectField("Fund", coerce=int, validators=[InputRequired("Choose a fund.")])
    received_on = DateField("Date received", validators=[InputRequired("Enter the date received.")])
    check_number = StringField("Check number", validators=[Optional(), Length(max=50), no_control_characters])
    postmarked_on = DateField("Postmark date", validators=[Optional()])
    vehicle = SelectField(
        "Given as",
        choices=choices([("", "Personal, or a business when an organization is named"), *VEHICLE_CHOICES]),
        validators=[Optional()],
    )
    fair_market_value = DollarsField(
        "Fair market value of what the donor received ($)", validators=[Optional(), Length(max=20)]
    )
    anonymous = BooleanField("Anonymous (do not publish the name)")
    tribute_kind = SelectField("Dedication", choices=choices(TRIBUTE_CHOICES), validators=[Optional()])
    tribute_name = StringField("Name of the person", validators=[Optional(), Length(max=200), no_control_characters])
    memo = StringField("Memo", validators=[Optional(), Length(max=200), no_control_characters])
    send_receipt = BooleanField("Email a receipt (when there is an email address)", default=True)


class CheckRowForm(Form):
    """One check of a batch (a sub-form: the batch form carries the CSRF token)."""

    email = _DonorFields.email
    name = _DonorFields.name
    postal_code = _DonorFields.postal_code
    check_number = StringField("Check number", validators=[Optional(), Length(max=50), no_control_characters])
    postmarked_on = DateField("Postmark date", validators=[Optional()])
    # No Optional(): it would stop the chain before validate_amount, which requires an amount
    # on every row that is not blank.
    amount = DollarsField("Amount ($)", validators=[Length(max=20), positive])

    def is_blank(self) -> bool:
        """Nothing typed in the row (unused rows of the batch are skipped)."""
        return not any((field.raw_data or [""])[0].strip() for field in self)

    def validate_amount(self, field: DollarsField) -> None:
        if not self.is_blank() and field.cents is None:
            raise ValidationError("Enter the amount.")


class BatchForm(FlaskForm):
    fund = SelectField("Fund", coerce=int, validators=[InputRequired("Choose a fund.")])
    received_on = DateField("Date received", validators=[InputRequired("Enter the date received.")])
    send_receipt = BooleanField("Email a receipt to donors with an email address", default=True)
    rows = FieldList(FormField(CheckRowForm), min_entries=10, max_entries=50)


# --- Funds -------------------------------------------------------------------------------------


class AmountListField(StringField):
    """Dollar amounts separated by commas ("25, 50, 100"), held as cents in `.amounts`."""

    amounts: list[int] = []

    def process_formdata(self, valuelist: list[Any]) -> None:
        super().process_formdata(valuelist)
        self.amounts = []
        parts = [part.strip() for part in (self.data or "").split(",") if part.strip()]
        if len(parts) > 8:
            raise ValueError("Suggest at most 8 amounts.")
        try:
            self.amounts = [parse_dollars(part) for part in parts]
        except AmountError as exc:
            raise ValueError(str(exc)) from None
        if any(cents <= 0 for cents in self.amounts):
            raise ValueError("Amounts must be more than zero.")

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return ", ".join(f"{c // 100}" if c % 100 == 0 else f"{c // 100}.{c % 100:02d}" for c in self.data or [])


class FundForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired("Name the fund."), Length(max=200), no_control_characters])
    slug = StringField(
        "Address (gifts at /give/ADDRESS: lowercase letters, digits, dashes)",
        validators=[InputRequired("Choose the fund's address."), Length(max=80)],
    )
    description = TextAreaField("Description (shown on its gift page)", validators=[Length(max=2000)])
    goal = DollarsField("Goal ($, optional)", validators=[Optional(), Length(max=20), positive])
    one_time = AmountListField("Suggested one-time amounts ($, comma separated)", validators=[Length(max=200)])
    monthly = AmountListField("Suggested monthly amounts ($)", validators=[Length(max=200)])
    annual = AmountListField("Suggested annual amounts ($)", validators=[Length(max=200)])
    active = BooleanField("Active (open for gifts)", default=True)
    is_default = BooleanField("Default fund (receives gifts that name no fund)")
    show_progress = BooleanField("Show a progress bar toward the goal on its gift page")
    default_frequency = SelectField(
        "The gift page starts on",
        choices=[
            SelectChoice("", "The first frequency offered"),
            SelectChoice("one_time", "One time"),
            SelectChoice("monthly", "Monthly"),
            SelectChoice("annual", "Every year"),
        ],
        default="",
    )
    amount_notes = TextAreaField(
        "What an amount pays for (optional; one a line, like: 25 = A week of meeting coverage)",
        validators=[Length(max=2000)],
    )
    monthly_prompt = StringField(
        "Prompt toward monthly, shown while one time is chosen (optional; empty: none)",
        validators=[Length(max=200)],
    )
    newsletter_offer = SelectField(
        "Newsletter opt-in on its gift page",
        choices=[
            SelectChoice("", "As the newsroom's look settings say"),
            SelectChoice("on", "Offer it"),
            SelectChoice("off", "Don't offer it"),
        ],
        default="",
    )
    newsletter_wording = StringField(
        "Wording of the opt-in (optional; empty: the newsroom's)", validators=[Length(max=300), no_control_characters]
    )
    tax_status = RadioField(
        "Tax status",
        choices=[
            SelectChoice("own", "Not deductible: the newsroom's own fund (gifts online and offline)"),
            SelectChoice(
                "sponsor", "Held by a fiscal sponsor: gifts are tax deductible, received and reported by the sponsor"
            ),
        ],
        default="own",  # a form that leaves it out (an older page, a script) keeps the default
    )
    # No Optional(): it would stop the checks below, which only apply to a sponsor-held fund.
    sponsor_name = StringField("Fiscal sponsor's name", validators=[Length(max=200), no_control_characters])
    sponsor_ein = StringField("Fiscal sponsor's EIN (like 12-3456789)", validators=[Length(max=10)])
    sponsor_receipt_wording = TextAreaField(
        "Wording the sponsor requires on receipts (optional)", validators=[Length(max=1000), no_control_characters]
    )

    def validate_sponsor_name(self, field: StringField) -> None:
        if self.tax_status.data == "sponsor" and not (field.data or "").strip():
            raise ValidationError("Name the fiscal sponsor that holds the fund.")

    def validate_sponsor_ein(self, field: StringField) -> None:
        if self.tax_status.data == "sponsor" and not EIN.match((field.data or "").strip()):
            raise ValidationError("Enter the sponsor's EIN: two digits, a dash and seven digits, like 12-3456789.")

    def sponsor(self) -> Sponsor | None:
        if self.tax_status.data != "sponsor":
            return None
        return Sponsor(
            name=(self.sponsor_name.data or "").strip(),
            ein=(self.sponsor_ein.data or "").strip(),
            receipt_wording=(self.sponsor_receipt_wording.data or "").strip(),
        )

    def validate_amount_notes(self, field: TextAreaField) -> None:
        parse_amount_notes(field.data or "")  # refused here with the line that is wrong

    def validate_show_progress(self, field: BooleanField) -> None:
        if field.data and self.goal.cents is None:
            raise ValidationError("A progress bar needs a goal.")

    def suggested_amounts(self) -> dict[str, list[int]]:
        fields = {"one_time": self.one_time, "monthly": self.monthly, "annual": self.annual}
        return {frequency: field.amounts for frequency, field in fields.items() if field.amounts}


# --- Audit and staff users -----------------------------------------------------------------------


class AuditFilterForm(GetForm):
    user = SelectField("Staff member", coerce=str, validators=[Optional()])
    action = SelectField("Action", coerce=str, validators=[Optional()])
    before = IntegerField(validators=[Optional(), NumberRange(min=1, max=MAX_ROW_ID)])


class StaffUserForm(FlaskForm):
    email = StringField(
        "Email",
        validators=[InputRequired("Enter their email."), Length(max=254), Email("Enter a valid email address.")],
    )
    name = StringField("Name", validators=[Optional(), Length(max=200), no_control_characters])
    role = SelectField("Role", choices=choices(ROLE_CHOICES), default=Role.VIEWER.value, validators=[InputRequired()])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=choices(ROLE_CHOICES), validators=[InputRequired()])


def parse_amount_notes(text: str) -> dict[str, str]:
    """ "25 = A week of meeting coverage" lines -> {"2500": "A week of meeting coverage"}."""
    notes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        amount, sep, note = line.partition("=")
        if not sep or not note.strip():
            raise ValidationError(f"Line {number}: write an amount, '=', then what it pays for.")
        try:
            cents = parse_dollars(amount.strip())
        except AmountError as exc:
            raise ValidationError(f"Line {number}: {exc}") from None
        if any(ord(ch) < 32 for ch in note):
            raise ValidationError(f"Line {number}: remove the special characters.")
        notes[str(cents)] = note.strip()[:120]
    return notes


def amount_notes_text(notes: dict[str, str]) -> str:
    lines = []
    for cents, note in sorted(notes.items(), key=lambda item: int(item[0])):
        value = int(cents)
        lines.append(f"{value // 100 if value % 100 == 0 else f'{value / 100:.2f}'} = {note}")
    return "\n".join(lines)


# --- The newsroom's look ---------------------------------------------------------------------------


class LookForm(FlaskForm):
    name = StringField("Newsroom name (empty: the configured one)", validators=[Length(max=200), no_control_characters])
    accent = StringField("Accent colour (like #0b4f8a; empty: the default blue)", validators=[Length(max=20)])
    footer = StringField("Footer line (optional, one short line)", validators=[Length(max=200), no_control_characters])
    logo = FileField("Logo (PNG or JPEG, at most 24 KB)")
    remove_logo = BooleanField("Remove the logo")
    newsletter_offered = BooleanField("Offer a newsletter opt-in on the gift pages (a fund may say otherwise)")
    newsletter_wording = StringField(
        "Wording of the newsletter opt-in", validators=[Length(max=300), no_control_characters]
    )
