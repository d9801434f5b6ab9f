"""The grant reports, as streams of typed rows (see grants/export.py for CSV and XLSX).

`base` holds the `Report` type, its cells and the context a report is computed in; `evaluation`
applies the program's rules per donor; each other module is one report.
"""

from __future__ import annotations

from collections.abc import Callable

from donations.grants.models import ProgramSettings
from donations.grants.reports import disclosure, donors, ledger, payouts, reversals, summary
from donations.grants.reports.base import (
    Cell,
    Context,
    Money,
    Percent,
    Report,
    ReportError,
    ReportParams,
    context,
    counting_date,
    rules_for,
)
from donations.grants.reports.evaluation import program_totals, reversed_gift_facts

__all__ = [
    "BUILDERS",
    "REPORT_TITLES",
    "Cell",
    "Context",
    "Money",
    "Percent",
    "Report",
    "ReportError",
    "ReportParams",
    "build",
    "context",
    "counting_date",
    "program_totals",
    "reversed_gift_facts",
    "rules_for",
]

BUILDERS: dict[str, Callable[[Context], Report]] = {
    "summary": summary.summary,
    "donors": donors.donors,
    "ledger": ledger.ledger,
    "reversals": reversals.reversals,
    "disclosure": disclosure.disclosure,
    "payouts": payouts.payouts,
}
REPORT_TITLES = {
    "summary": "Program summary",
    "donors": "Program donors",
    "ledger": "Gift ledger",
    "reversals": "Refunds and disputes",
    "disclosure": "Disclosure of major donors",
    "payouts": "Payout reconciliation",
    "packet": "Funder packet",  # a saved run of several reports (grants/packet.py)
}


def build(settings: ProgramSettings, program_id: int, kind: str, params: ReportParams) -> Report:
    return BUILDERS[kind](context(settings, program_id, kind, params))
