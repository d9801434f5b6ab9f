"""`ledger verify`'s report check: a program's totals agree across its summary, donors and
ledger reports (the same numbers the test suite pins, checked on the live data)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from donations.grants import service
from donations.operations.verify import Violation

COUNTED = "Raised: counted toward the program"
MATCHABLE = "Matchable: counted, each donor capped"


def _cents(value: Any) -> int:
    return int(getattr(value, "cents", value) or 0)


def _rows(program: Any, kind: str) -> list[dict[str, Any]]:
    report = service.build_report(program, kind)
    return [dict(zip(report.columns, row, strict=True)) for row in report.rows]


def disagreements() -> Iterator[Violation]:
    for program in service.list_programs():
        measures: dict[Any, Any] = {row[0]: row[1] for row in service.build_report(program, "summary").rows}
        donors = _rows(program, "donors")
        gift_lines = [line for line in _rows(program, "ledger") if line.get("Reversal ID") is None]
        for label, column in ((COUNTED, "Counted ($)"), (MATCHABLE, "Matchable ($)")):
            summary = _cents(measures.get(label))
            by_donor = sum(_cents(row[column]) for row in donors)
            by_line = sum(_cents(line[column]) for line in gift_lines)
            if not summary == by_donor == by_line:
                yield Violation(
                    "report-totals-disagree",
                    f"{label.split(':')[0].lower()} differs across the program's reports",
                    {"program": program.slug, "summary": summary, "donors": by_donor, "ledger": by_line},
                )
