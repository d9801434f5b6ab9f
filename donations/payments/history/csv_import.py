"""`history csv FILE --format generic|npsp|donorbox`: past donors and gifts from another system's
export. Every row is read and checked first; with any error nothing is written and each error is
given as line, column, value and reason. A re-run imports nothing twice (source system +
external id). Amounts are exact cents; a date without a time is a local date in
NEWSROOM_TIMEZONE (the gift is dated at its local noon)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from donations.clock import local_date, newsroom_zone, utcnow
from donations.ledger import imports
from donations.ledger.models import Frequency, Fund, GiftSource
from donations.ledger.offline import received_at_for
from donations.ledger.service import default_fund
from donations.money import AmountError, parse_dollars

# Our field -> the column names each format uses for it (the first present is read).
FORMATS: dict[str, dict[str, tuple[str, ...]]] = {
    "generic": {
        "external_id": ("external_id",),
        "date": ("date",),
        "amount": ("amount",),
        "email": ("email",),
        "first_name": ("first_name",),
        "last_name": ("last_name",),
        "organization": ("organization",),
        "postal_code": ("postal_code",),
        "frequency": ("frequency",),
        "source": ("source",),
        "check_number": ("check_number",),
        "fund": ("fund",),
        "anonymous": ("anonymous",),
        "tribute": ("tribute",),
    },
    # Salesforce NPSP: an Opportunity export (API names, or a report's labels). Payment method and
    # check number are fields of NPSP's Payment object (npe01__OppPayment__c), not of the
    # Opportunity: only an export or report that joins the payments has them.
    "npsp": {
        "external_id": ("Id", "Opportunity ID"),
        "date": ("CloseDate", "Close Date"),
        "amount": ("Amount",),
        "email": ("npsp__Primary_Contact__r.Email", "Primary Contact: Email", "Email"),
        "first_name": ("npsp__Primary_Contact__r.FirstName", "Primary Contact: First Name", "First Name"),
        "last_name": ("npsp__Primary_Contact__r.LastName", "Primary Contact: Last Name", "Last Name"),
        "organization": ("Account.Name", "Account Name"),
        "postal_code": ("npsp__Primary_Contact__r.MailingPostalCode", "Mailing Zip/Postal Code"),
        "stage": ("StageName", "Stage"),
        "check_number": ("npe01__Check_Reference_Number__c", "Check/Reference Number"),
        "source": ("npe01__Payment_Method__c", "Payment Method"),
        "tribute_kind": ("npsp__Tribute_Type__c", "Tribute Type"),
        "tribute_name": ("npsp__Honoree_Name__c", "Honoree Name"),
        "recurring": ("npe03__Recurring_Donation__c", "Recurring Donation"),
    },
    # Donorbox's donations export, by the headers of real exports as open-source importers of them
    # on GitHub read them (a Python reconciler listing an export's whole header, a TypeScript
    # type of its rows, a C# reader: "Receipt Id", "Donated At", "Donor's First Name", "Make
    # Donation Anonymous", "Status"...); Donorbox publishes no column reference. Older names after.
    "donorbox": {
        "external_id": ("Receipt Id", "Stripe Charge Id", "Pay Pal Transaction Id", "Paypal Transaction Id"),
        "date": ("Donated At", "Donation Date"),
        "amount": ("Amount",),
        "currency": ("Currency",),
        "email": ("Donor Email",),
        "first_name": ("Donor's First Name", "Donor First Name"),
        "last_name": ("Donor's Last Name", "Donor Last Name"),
        "name": ("Name",),
        "organization": ("Donating Company",),
        "postal_code": ("Postal Code",),
        "status": ("Status",),
        "interval": ("Donation Interval",),
        "recurring": ("Recurring Donation",),
        "anonymous": ("Make Donation Anonymous",),
        "tribute_kind": ("Dedication Type",),
        "tribute_name": ("Honoree Name",),
        "fund": ("Designation",),
    },
}
REQUIRED = ("external_id", "date", "amount", "email")
FREQUENCIES = {
    "": Frequency.ONE_TIME,
    "one_time": Frequency.ONE_TIME,
    "one-time": Frequency.ONE_TIME,
    "once": Frequency.ONE_TIME,
    "monthly": Frequency.MONTHLY,
    "month": Frequency.MONTHLY,
    "annual": Frequency.ANNUAL,
    "annually": Frequency.ANNUAL,
    "yearly": Frequency.ANNUAL,
}
YES = {"yes", "true", "1", "y", "x"}
NO = {"no", "false", "0", "n", ""}
WON_STAGES = {"closed won", "posted", "received"}
PAID_STATUSES = {"paid", ""}  # Donorbox's; its pending, failed and refunded rows are skipped
# Donorbox's "Donated At" (e.g. 05/01/24 10:22:33), and other date-and-time layouts without a zone.
LOCAL_TIMES = ("%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%Y %H:%M")


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column!r}, value {self.value[:60]!r}: {self.reason}"


@dataclass
class Parsed:
    rows: list[tuple[int, imports.ImportedRow]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0  # NPSP opportunities not won, Donorbox donations not paid


def _date(text: str) -> datetime:
    text = text.strip()
    for layout in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y"):
        try:
            day = datetime.strptime(text, layout).date()
        except ValueError:
            continue
        return received_at_for(day)
    for layout in LOCAL_TIMES:
        try:
            return datetime.strptime(text, layout).replace(tzinfo=newsroom_zone())
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(text.replace(" UTC", "+00:00"))
    except ValueError:
        raise ValueError("not a date: use YYYY-MM-DD (or MM/DD/YYYY, or an ISO date and time)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=newsroom_zone())


def _tribute(kind: str, name: str) -> tuple[str | None, str | None]:
    kind = kind.strip().casefold()
    if not kind and not name.strip():
        return None, None
    if "memor" in kind:
        return "memory", name.strip()[:200] or None
    if "honor" in kind or "honour" in kind:
        return "honor", name.strip()[:200] or None
    raise ValueError("a tribute is in honor or in memory of someone")


def parse(text: str, fmt: str) -> Parsed:
    """Read and check every row; nothing is written here."""
    columns = FORMATS[fmt]
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    result = Parsed()
    present = {ours: next((name for name in names if name in header), None) for ours, names in columns.items()}
    for ours in REQUIRED:
        if present[ours] is None:
            result.errors.append(RowError(1, " or ".join(columns[ours]), "", "this column is missing"))
    if result.errors:
        return result
    funds = {slug: (fund_id, sponsor_held) for slug, fund_id, sponsor_held in _funds()}
    default_id = default_fund().id
    today = local_date(utcnow())
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        errors_before = len(result.errors)

        def get(ours: str, record: dict[str, str | None] = record) -> str:
            name = present.get(ours)
            return (record.get(name) or "").strip() if name else ""

        def fail(ours: str, reason: str, line: int = line) -> None:
            result.errors.append(RowError(line, present.get(ours) or ours, get(ours), reason))

        if fmt == "npsp" and present.get("stage") and get("stage").casefold() not in WON_STAGES:
            result.skipped += 1
            continue
        if present.get("status") and get("status").casefold() not in PAID_STATUSES:
            result.skipped += 1
            continue
        external_id = get("external_id")
        if not external_id or len(external_id) > 255:
            fail("external_id", "every row needs its id in the other system (at most 255 characters)")
        elif external_id in seen:
            fail("external_id", f"the same id is on line {seen[external_id]}")
        else:
            seen[external_id] = line
        received_at = None
        try:
            received_at = _date(get("date"))
            if local_date(received_at) > today:
                fail("date", "the date is in the future")
        except ValueError as exc:
            fail("date", str(exc))
        amount = 0
        try:
            amount = parse_dollars(get("amount"))
            if amount <= 0:
                fail("amount", "the amount must be more than zero")
        except AmountError as exc:
            fail("amount", str(exc))
        if present.get("currency") and get("currency").casefold() not in ("", "usd"):
            fail("currency", "only gifts in USD can be imported")
        email = get("email")
        if "@" not in email or len(email) > 254 or " " in email:
            fail("email", "not an email address")
        frequency = Frequency.ONE_TIME
        if fmt == "generic":
            if get("frequency").casefold() not in FREQUENCIES:
                fail("frequency", "one_time, monthly or annual")
            else:
                frequency = FREQUENCIES[get("frequency").casefold()]
        elif present.get("interval"):
            if get("interval").casefold() not in FREQUENCIES:
                fail("interval", "this app records one-time, monthly and annual gifts only")
            else:
                frequency = FREQUENCIES[get("interval").casefold()]
        elif get("recurring").casefold() in YES or (fmt == "npsp" and get("recurring")):
            frequency = Frequency.MONTHLY
        source = GiftSource.OTHER
        method = get("source").casefold()
        if method in ("check", "cheque"):
            source = GiftSource.CHECK
        elif method == "cash":
            source = GiftSource.CASH
        fund_id, sponsor_held = default_id, False
        if get("fund"):
            if get("fund") in funds:
                fund_id, sponsor_held = funds[get("fund")]
            elif fmt == "generic":
                fail("fund", "no fund has this slug (see `funds add`, or leave it empty for the default fund)")
        # A sponsor-held fund's gifts are the sponsor's report of them, however they were paid.
        if sponsor_held:
            source = GiftSource.SPONSOR
        elif method == "sponsor":
            fail("source", "only a fund held by a fiscal sponsor takes gifts from a sponsor")
        elif source == GiftSource.CHECK and not get("check_number"):
            fail("check_number", "a check needs its check number")
        anonymous = False
        if present.get("anonymous"):
            value = get("anonymous").casefold()
            if value not in YES | NO:
                fail("anonymous", "yes or no")
            anonymous = value in YES
        tribute: tuple[str | None, str | None] = (None, None)
        try:
            if fmt == "generic":
                kind, _, name = get("tribute").partition(":")
                tribute = _tribute(kind, name) if get("tribute") else (None, None)
            else:
                tribute = _tribute(get("tribute_kind"), get("tribute_name"))
        except ValueError as exc:
            fail("tribute" if fmt == "generic" else "tribute_kind", str(exc))
        name = " ".join(part for part in (get("first_name"), get("last_name")) if part) or get("name")
        if len(result.errors) > errors_before or received_at is None:
            continue
        result.rows.append(
            (
                line,
                imports.ImportedRow(
                    source_system=fmt,
                    external_id=external_id,
                    received_at=received_at,
                    amount_cents=amount,
                    email=email,
                    name=name[:200] or None,
                    organization=get("organization")[:200] or None,
                    postal_code=get("postal_code")[:20] or None,
                    frequency=frequency,
                    source=source,
                    check_number=get("check_number")[:50] or None,
                    fund_id=fund_id,
                    anonymous=anonymous,
                    tribute_kind=tribute[0],
                    tribute_name=tribute[1],
                ),
            )
        )
    return result


def _funds() -> Iterable[tuple[str, int, bool]]:
    from donations.extensions import db

    rows = db.session.execute(select(Fund.slug, Fund.id, Fund.sponsor_held))
    return [(slug, fund_id, sponsor_held) for slug, fund_id, sponsor_held in rows]


@dataclass(frozen=True)
class CsvSummary:
    rows: int
    imported: int
    already: int  # imported before (this system's id)
    skipped: int
    amount_cents: int
    # Checks already recorded (by hand, by another import, or on an earlier line of this file):
    # (line, the gift recorded, that earlier line or None).
    same_checks: tuple[tuple[int, int, int | None], ...] = ()

    def same_check_words(self, *, dry_run: bool) -> list[str]:
        """Each check skipped as recorded before, in words: its line and what it repeats."""
        skipped = "would be skipped" if dry_run else "skipped"
        return [
            f"Line {line} {skipped}: the same check as line {earlier}."
            if earlier is not None
            else f"Line {line} {skipped}: this check is already recorded as gift #{gift_id}."
            for line, gift_id, earlier in self.same_checks
        ]


def import_rows(parsed: Parsed) -> CsvSummary:
    """Record every valid row (the caller checked there are no errors, and owns the transaction)."""
    imported = amount = 0
    same_checks: list[tuple[int, int, int | None]] = []
    line_of_gift: dict[int, int] = {}
    fmt = parsed.rows[0][1].source_system if parsed.rows else "generic"
    before = imports.already_imported(fmt, [row.external_id for _, row in parsed.rows])
    for line, row in parsed.rows:
        if row.external_id in before:
            continue
        recorded = imports.record_imported_gift(row)
        if recorded.gift is not None:
            imported += 1
            amount += row.amount_cents
            line_of_gift[recorded.gift.id] = line
        elif recorded.same_check_as is not None:
            gift_id = recorded.same_check_as.id
            same_checks.append((line, gift_id, line_of_gift.get(gift_id)))
    already = len(parsed.rows) - imported - len(same_checks)
    return CsvSummary(len(parsed.rows), imported, already, parsed.skipped, amount, tuple(same_checks))


def dry_run_summary(parsed: Parsed) -> CsvSummary:
    """What `import_rows` would record: the import itself, rolled back (the dry run is a command
    of its own, so the session holds nothing else). Counting by running it, rather than by a
    second set of rules, keeps the dry run exact: a check twice in one file is recorded once."""
    from donations.extensions import db

    try:
        return import_rows(parsed)
    finally:
        db.session.rollback()
