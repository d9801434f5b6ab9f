"""A program's settings and a report's totals in words, for pages that show a saved run (its
settings and totals are kept as JSON, by key): "Sources counted: Online (Stripe), Check",
never `sources: ['stripe', 'check']`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from donations.extensions import db
from donations.grants.models import ProgramSettings
from donations.grants.reports.base import REASON_LABELS, SOURCE_LABELS, Cell, Money
from donations.grants.rules import Reason, RecurringRule
from donations.ledger.models import Fund

RULE_LABELS = {
    RecurringRule.INSTALLMENTS: "Each installment paid in the window",
    RecurringRule.NEW_RECURRING_X12: "New recurring donors count 12 x the monthly amount",
}

# A saved run's totals, by key (reports/evaluation.py ProgramTotals.as_dict and the reports').
TOTAL_WORDS = {
    "counted_cents": "Raised: counted toward the program",
    "matchable_cents": "Matchable: counted, each donor capped",
    "over_cap_cents": "Over the per-donor cap (not matchable)",
    "gross_cents": "Paid, before reversals",
    "reversed_cents": "Reversed (refunds and lost disputes)",
    "reversals_cents": "Reversed (refunds and lost disputes)",
    "donors_counted": "Donors counted",
    "new_donors": "New donors",
    "returning_donors": "Returning donors",
    "new_recurring_donors": "New recurring donors",
    "new_recurring_canceled_in_window": "New recurring donors who canceled within the window",
    "gifts_in_window": "Gifts paid in the window",
    "gifts_counted": "Gifts counted",
    "gifts": "Gifts",
    "reversals": "Refunds and disputes",
    "after_export": "Refunds and disputes after an export",
    "program_cap_cents": "Program-level match cap",
    "matchable_before_program_cap_cents": "Matchable before the program-level cap",
    "matchable_after_program_cap_cents": "Matchable after the program-level cap",
    "local_donors": "Local donors counted",
    "local_counted_cents": "Raised from local donors",
    "rows": "Rows",
}


def fund_names(fund_ids: Sequence[int] | None) -> str:
    if fund_ids is None:
        return "All funds"
    names = db.session.scalars(select(Fund.name).where(Fund.id.in_(fund_ids)).order_by(Fund.name)).all()
    return ", ".join(names) or "none"


def area_words(prefixes: Sequence[str], states: Sequence[str]) -> str:
    parts = []
    if prefixes:
        parts.append("postal codes starting " + ", ".join(prefixes))
    if states:
        parts.append("states " + ", ".join(states))
    return "; or ".join(parts)


def _money_or(cents: int | None, none: str) -> Cell:
    return none if cents is None else Money(cents)


def rule_rows(s: ProgramSettings) -> list[tuple[str, Cell]]:
    """The program's window and counting rules, as a person reads them (the summary's first rows)."""
    return [
        ("Window (local dates, inclusive)", f"{s.first_day.isoformat()} to {s.last_day.isoformat()}"),
        ("Per-donor cap", _money_or(s.cap_cents, "none")),
        ("Funds counted", fund_names(s.fund_ids)),
        ("Sources counted", ", ".join(SOURCE_LABELS.get(x, x) for x in s.sources)),
        (
            "Individuals only",
            "Yes: personal gifts and gifts through a donor-advised fund or a family foundation"
            if s.individuals_only
            else "No: every gift counts, whoever gave it",
        ),
        ("Recurring gifts", RULE_LABELS[RecurringRule(s.recurring_rule)]),
        ("Largest anonymous gift counted", _money_or(s.anonymous_limit_cents, "no limit")),
        ("Fair market value of what donors received", "deducted" if s.deduct_fair_market_value else "not deducted"),
        ("Program-level match cap", _money_or(s.program_cap_cents, "none")),
    ]


def settings_rows(s: ProgramSettings) -> list[tuple[str, Cell]]:
    """Every setting a report is computed with, as a person reads it."""
    rows = rule_rows(s)
    if s.exclusive_with:
        rows.append(("Exclusive with (programs)", ", ".join(s.exclusive_with)))
    rows.append(("Priority among exclusive programs (lower first)", s.priority))
    if s.local_postal_prefixes or s.local_states:
        rows.append(("Local area", area_words(s.local_postal_prefixes, s.local_states)))
    if s.goal_cents is not None:
        rows.append(("Goal", Money(s.goal_cents)))
    return rows


def snapshot_rows(snapshot: dict[str, Any]) -> list[tuple[str, Cell]]:
    """A saved run's settings in words; a snapshot that no longer reads is shown as stored."""
    try:
        settings = ProgramSettings.from_snapshot(snapshot)
        rows = settings_rows(settings)
    except (KeyError, TypeError, ValueError):
        return [(key, str(value)) for key, value in snapshot.items()]
    return [("Program", settings.name), *rows, *([("Notes", settings.notes)] if settings.notes else [])]


def total_words(key: str) -> str:
    return TOTAL_WORDS.get(key, key.replace("_", " ").capitalize())


def total_value(key: str, value: Any) -> Cell:
    if key.endswith("_cents") and isinstance(value, int) and not isinstance(value, bool):
        return Money(value)
    return value if isinstance(value, int | str) or value is None else str(value)


def totals_rows(totals: dict[str, Any]) -> list[tuple[str, Cell]]:
    """A saved run's totals in words: its gifts by reason one line per reason."""
    rows: list[tuple[str, Cell]] = []
    for key, value in totals.items():
        if key == "gifts_by_reason" and isinstance(value, dict):
            for reason, count in value.items():
                label = REASON_LABELS.get(Reason(reason), reason) if reason in set(Reason) else reason
                rows.append((f"Gifts: {label}", count))
        else:
            rows.append((total_words(key), total_value(key, value)))
    return rows


def changed_settings_rows(then: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Cell, Cell]]:
    """The settings that differ between two snapshots, in words: (setting, then, now)."""
    before, after = dict(snapshot_rows(then)), dict(snapshot_rows(now))
    labels = [*after, *(label for label in before if label not in after)]
    return [(label, before.get(label), after.get(label)) for label in labels if before.get(label) != after.get(label)]


PARAMETER_WORDS = {"first_day": "From", "last_day": "To", "year": "Year"}
