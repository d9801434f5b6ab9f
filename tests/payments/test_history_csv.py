"""`history csv`: every row checked first, errors as line/column/value/reason with nothing
written; a fixed file imports; a re-run adds nothing; Donorbox and NPSP exports."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.clock import local_date
from donations.extensions import db
from donations.ledger.imports import ImportedGift
from donations.ledger.models import Donor, Gift, GiftSource
from tests.factories import make_fund

GENERIC = [
    "external_id",
    "date",
    "amount",
    "email",
    "first_name",
    "last_name",
    "organization",
    "postal_code",
    "frequency",
    "source",
    "check_number",
    "fund",
    "anonymous",
    "tribute",
]


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def write(path, header, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def run(app, *args):
    result = app.test_cli_runner().invoke(args=["history", "csv", *args])
    db.session.expire_all()
    return result


def generic_row(n: int) -> list[str]:
    return [
        f"old-{n}",
        f"2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
        f"{10 + n % 90}.{n % 100:02d}",
        f"Donor{n % 1500}@Example.org",
        "Ada",
        f"Reader{n % 1500}",
        "",
        "94110",
        "monthly" if n % 10 == 0 else "one_time",
        "check" if n % 7 == 0 else "card",
        f"{1000 + n}" if n % 7 == 0 else "",
        "",
        "no" if n % 2 else "yes",
        "honor: Grandma" if n % 50 == 0 else "",
    ]


def test_five_thousand_rows_with_mistakes_then_fixed_then_again(app, fund, tmp_path):
    rows = [generic_row(n) for n in range(5_000)]
    bad = {
        17: (1, "2024-13-45"),
        404: (1, "2030-01-01"),
        999: (2, "20,5"),
        1500: (2, "-5"),
        2000: (3, "not-an-email"),
        2500: (8, "weekly"),
        3000: (10, ""),
        3333: (11, "no-such-fund"),
        4000: (12, "maybe"),
        4500: (0, "old-1"),
    }
    fixed = [list(row) for row in rows]
    for n, (column, value) in bad.items():
        rows[n][column] = value
    rows[3000][9] = "check"

    path = write(tmp_path / "gifts.csv", GENERIC, rows)
    dry = run(app, path, "--dry-run")
    assert dry.exit_code != 0
    assert "10 errors: nothing was imported" in dry.output
    for n in bad:
        assert f"line {n + 2}," in dry.output  # the header is line 1
    assert "line 19, column 'date', value '2024-13-45': not a date" in dry.output
    assert "column 'amount', value '20,5': Use a period for cents" in dry.output
    assert "the same id is on line 3" in dry.output
    assert count(Gift) == 0 and count(Donor) == 0

    path = write(tmp_path / "fixed.csv", GENERIC, fixed)
    preview = run(app, path, "--dry-run")
    assert preview.exit_code == 0 and "It would import 5000 gifts" in preview.output and count(Gift) == 0
    result = run(app, path)
    assert result.exit_code == 0, result.output
    assert "Imported 5000 gifts" in result.output
    assert count(Gift) == 5_000 and count(Donor) == 1_500  # matched by case-folded email
    total = db.session.scalar(select(func.sum(Gift.amount_cents)))
    assert total == sum(int(row[2].replace(".", "")) for row in fixed)  # exact cents
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "history.csv")) is not None
    again = run(app, path)
    assert again.exit_code == 0 and "Imported 0 gifts" in again.output and "5000 imported before" in again.output
    assert count(Gift) == 5_000 and count(ImportedGift) == 5_000


def test_a_date_without_a_time_is_a_local_date_and_donors_merge_with_online_ones(app, fund, tmp_path):
    from tests.factories import make_donor

    online = make_donor(email="rae@example.org")
    db.session.commit()
    row = [
        "x1",
        "2024-03-10",
        "25.01",
        "RAE@Example.ORG",
        "Rae",
        "Reader",
        "Acme LLC",
        "94110",
        "",
        "check",
        "77",
        "",
        "",
        "memory: Pat",
    ]
    assert run(app, write(tmp_path / "g.csv", GENERIC, [row])).exit_code == 0
    gift = db.session.scalars(select(Gift)).one()
    assert gift.donor_id == online.id and gift.amount_cents == 2_501
    assert local_date(
        gift.received_at.replace(tzinfo=UTC) if gift.received_at.tzinfo is None else gift.received_at
    ) == (datetime(2024, 3, 10).date())
    assert (gift.source, gift.check_number, gift.organization) == (GiftSource.CHECK, "77", "Acme LLC")
    assert (gift.tribute_kind, gift.tribute_name) == ("memory", "Pat")
    assert gift.attribution["imported_from"] == "generic"


# A Donorbox donations export's own header (a part of it, in its order).
DONORBOX = [
    "Name",
    "Donating Company",
    "Donor's First Name",
    "Donor's Last Name",
    "Donor Email",
    "Make Donation Anonymous",
    "Campaign",
    "Amount",
    "Currency",
    "Amount in USD",
    "Donated At",
    "Postal Code",
    "Designation",
    "Receipt Id",
    "Donation Type",
    "Stripe Charge Id",
    "Pay Pal Transaction Id",
    "Recurring Donation",
    "Dedication Type",
    "Honoree Name",
    "Status",
]


def donorbox_row(**values: str) -> list[str]:
    row = dict.fromkeys(DONORBOX, "") | {"Currency": "USD", "Status": "paid", "Make Donation Anonymous": "no"}
    return [(row | values)[column] for column in DONORBOX]


def test_a_donorbox_export(app, fund, tmp_path):
    rows = [
        donorbox_row(
            **{
                "Name": "Ann Lee",
                "Donor's First Name": "Ann",
                "Donor's Last Name": "Lee",
                "Donor Email": "ann@example.org",
                "Postal Code": "94110",
                "Donated At": "05/01/24 10:22:33",
                "Amount": "50.00",
                "Receipt Id": "1001",
                "Donation Type": "stripe",
                "Stripe Charge Id": "ch_old1",
                "Recurring Donation": "yes",
            }
        ),
        donorbox_row(
            **{
                "Name": "Bo Chan",
                "Donating Company": "Chan Co",
                "Donor Email": "bo@example.org",
                "Make Donation Anonymous": "yes",
                "Donated At": "2024-05-02 09:00:00 -0700",
                "Amount": "1,000.00",
                "Receipt Id": "1002",
                "Donation Type": "paypal",
                "Pay Pal Transaction Id": "5XY",
                "Dedication Type": "In Memory of",
                "Honoree Name": "Grandpa",
            }
        ),
        # A failed payment: skipped, not an error.
        donorbox_row(
            **{"Donor Email": "cy@example.org", "Donated At": "05/03/24 08:00:00", "Amount": "9", "Status": "failed"}
        ),
    ]
    result = run(app, write(tmp_path / "db.csv", DONORBOX, rows), "--format", "donorbox")
    assert result.exit_code == 0, result.output
    assert "Imported 2 gifts" in result.output and "1 skipped" in result.output
    gifts = {g.attribution["external_id"]: g for g in db.session.scalars(select(Gift))}
    assert gifts["1001"].frequency == "monthly" and gifts["1001"].amount_cents == 5_000
    assert gifts["1001"].donor.name == "Ann Lee"
    # Donorbox's time without a zone is the newsroom's local time.
    local = datetime(2024, 5, 1, 10, 22, 33, tzinfo=ZoneInfo(app.config["NEWSROOM_TIMEZONE"]))
    assert gifts["1001"].received_at.replace(tzinfo=UTC) == local
    assert gifts["1002"].anonymous and gifts["1002"].amount_cents == 100_000 and gifts["1002"].frequency == "one_time"
    assert gifts["1002"].tribute_kind == "memory" and gifts["1002"].organization == "Chan Co"
    euro = [
        donorbox_row(
            **{
                "Donor Email": "c@example.org",
                "Donated At": "2024-05-03",
                "Amount": "5",
                "Currency": "EUR",
                "Receipt Id": "3",
            }
        )
    ]
    result = run(app, write(tmp_path / "eur.csv", DONORBOX, euro), "--format", "donorbox")
    assert result.exit_code != 0 and "only gifts in USD" in result.output


def test_an_npsp_export_imports_won_opportunities_only(app, fund, tmp_path):
    header = [
        "Id",
        "CloseDate",
        "Amount",
        "StageName",
        "npsp__Primary_Contact__r.Email",
        "npsp__Primary_Contact__r.FirstName",
        "npsp__Primary_Contact__r.LastName",
    ]
    rows = [
        ["006A", "2023-12-31", "120", "Closed Won", "x@example.org", "X", "Y"],
        ["006B", "2023-12-30", "90", "Closed Lost", "x@example.org", "X", "Y"],
        ["006C", "2023-11-01", "10.5", "Posted", "z@example.org", "Z", ""],
    ]
    result = run(app, write(tmp_path / "npsp.csv", header, rows), "--format", "npsp")
    assert result.exit_code == 0 and "Imported 2 gifts" in result.output and "1 skipped" in result.output
    assert sorted(db.session.scalars(select(Gift.amount_cents))) == [1_050, 12_000]


def test_a_missing_column_is_named(app, fund, tmp_path):
    result = run(app, write(tmp_path / "m.csv", ["date", "amount"], [["2024-01-01", "5"]]))
    assert result.exit_code != 0 and "line 1, column 'external_id'" in result.output and "missing" in result.output


def test_the_staff_page_checks_previews_and_imports(client, fund):
    import io

    from tests.forms import extract_csrf_token
    from tests.staff.support import make_staff, sign_in

    sign_in(client, make_staff("viewer"))
    assert client.get("/staff/history-import").status_code == 403
    sign_in(client, make_staff("finance"))
    token = extract_csrf_token(client.get("/staff/history-import").get_data(as_text=True))

    def upload(rows, action):
        body = io.StringIO()
        csv.writer(body).writerows([GENERIC, *rows])
        data = {
            "csrf_token": token,
            "format": "generic",
            "action": action,
            "file": (io.BytesIO(body.getvalue().encode()), "gifts.csv"),
        }
        return client.post("/staff/history-import", data=data, content_type="multipart/form-data")

    bad = upload([generic_row(1), [*generic_row(2)[:2], "lots", *generic_row(2)[3:]]], "import")
    assert bad.status_code == 400 and "1 errors in gifts.csv: nothing was imported" in bad.get_data(as_text=True)
    assert "lots" in bad.get_data(as_text=True) and count(Gift) == 0
    preview = upload([generic_row(1), generic_row(2)], "check")
    assert preview.status_code == 200 and "It would import 2 gifts" in preview.get_data(as_text=True)
    assert "old-1" in preview.get_data(as_text=True) and count(Gift) == 0
    assert upload([generic_row(1), generic_row(2)], "import").status_code == 303
    assert count(Gift) == 2
    assert (
        db.session.scalars(select(AuditEntry).where(AuditEntry.action == "history.csv"))
        .one()
        .actor.startswith("finance")
    )


def check_entered_by_hand(fund, postmarked_on=None):
    from donations.extensions import unit_of_work
    from donations.ledger import offline

    with unit_of_work():
        recorded = offline.record_offline_gift(
            offline.OfflineGift(
                donor=offline.DonorDetails(email="edna@example.org", name="Edna Check"),
                fund_id=fund.id,
                amount_cents=120_000,
                source=GiftSource.CHECK,
                received_on=datetime(2024, 3, 12).date(),
                check_number="2001",
                postmarked_on=postmarked_on,
            )
        )
    return recorded.gift


def check_row(external_id: str, check_number: str = "2001", amount: str = "1,200.00") -> list[str]:
    row = generic_row(1)
    row[0], row[1], row[2], row[3] = external_id, "2024-03-12", amount, "EDNA@example.org"
    row[8], row[9], row[10] = "one_time", "check", check_number
    return row


def test_a_check_entered_by_hand_is_not_imported_again(app, fund, tmp_path):
    """Issue 13's rule for the same check (number, amount, donor) holds for `history csv` too;
    the export has no postmark, so the postmark is left open."""
    gift = check_entered_by_hand(fund, postmarked_on=datetime(2024, 3, 9).date())
    rows = [check_row("x-1"), check_row("x-2", check_number="2002"), check_row("x-3", amount="1,200.01")]
    path = write(tmp_path / "checks.csv", GENERIC, rows)
    dry = run(app, path, "--dry-run")
    assert dry.exit_code == 0
    assert f"Line 2 would be skipped: this check is already recorded as gift #{gift.id}." in dry.output
    assert "It would import 2 gifts" in dry.output and count(Gift) == 1
    result = run(app, path)
    assert result.exit_code == 0, result.output
    assert f"Line 2 skipped: this check is already recorded as gift #{gift.id}." in result.output
    assert "Imported 2 gifts" in result.output and "1 checks already recorded" in result.output
    assert count(Gift) == 3
    same = select(func.count()).where(Gift.check_number == "2001", Gift.amount_cents == 120_000)
    assert db.session.scalar(same) == 1  # another number, or another amount, is another check


def test_the_same_check_twice_in_one_file_is_counted_once_by_the_dry_run_as_by_the_import(app, fund, tmp_path):
    rows = [check_row("x-1"), check_row("x-2"), check_row("x-3", check_number="2002")]
    path = write(tmp_path / "checks.csv", GENERIC, rows)
    dry = run(app, path, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Line 3 would be skipped: the same check as line 2." in dry.output
    assert "It would import 2 gifts ($2,400.00)" in dry.output and "1 checks already recorded" in dry.output
    assert count(Gift) == 0 and count(Donor) == 0  # nothing written
    result = run(app, path)
    assert result.exit_code == 0, result.output
    assert "Line 3 skipped: the same check as line 2." in result.output
    assert "Imported 2 gifts ($2,400.00)" in result.output
    assert count(Gift) == 2


def test_an_imported_check_is_not_entered_again_by_hand(app, fund, tmp_path):
    from donations.ledger.offline import OfflineGiftError

    assert run(app, write(tmp_path / "checks.csv", GENERIC, [check_row("x-1")])).exit_code == 0
    imported = db.session.scalars(select(Gift)).one()
    with pytest.raises(OfflineGiftError, match=f"already recorded: gift #{imported.id}"):
        check_entered_by_hand(fund, postmarked_on=datetime(2024, 3, 9).date())
    db.session.rollback()
    assert count(Gift) == 1


def test_a_sponsors_report_imports_deductible_gifts_to_its_fund(app, fund, tmp_path):
    from donations.ledger.funds import Sponsor

    make_fund("schools", name="Schools Reporting Fund", sponsor=Sponsor("Valley Community Foundation", "12-3456789"))
    row = ["s-1", "2024-11-05", "250.00", "ann@example.org", "Ann", "Giver", "", "94110", "", "check", "", "schools"]
    wrong = ["s-2", "2024-11-06", "20.00", "bo@example.org", "Bo", "Giver", "", "", "", "sponsor", "", ""]
    path = write(tmp_path / "sponsor.csv", GENERIC[:12], [row, wrong])
    result = run(app, path)
    assert result.exit_code != 0
    assert "line 3, column 'source', value 'sponsor'" in result.output
    assert count(Gift) == 0
    path = write(tmp_path / "sponsor.csv", GENERIC[:12], [row])
    result = run(app, path)
    assert result.exit_code == 0, result.output
    gift = db.session.scalars(select(Gift)).one()
    # Whatever the sponsor was paid with, the gift is the sponsor's report of it.
    assert (gift.source, gift.tax_deductible, gift.fund.slug) == (GiftSource.SPONSOR, True, "schools")
