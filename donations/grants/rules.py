"""Matching-grant rules: pure arithmetic from one donor's facts to counted and matchable cents.

No I/O, no clock, no database: the caller (queries.py) tells which window period each gift is in
and what was reversed; this module only decides what counts, and says why for every gift.

A `GiftFacts` is one gift or a group of gifts that the rules cannot tell apart (same donor,
period, fund, source, organization flag, fully-reversed flag; for membership installments also
the same amount and reversal), so that the database can aggregate and Python evaluates a few
groups per donor. A group of one and a single gift give the same numbers.

Rules (design.md, "Matching-grant accounting"):
- a gift counts when it was paid, its counting date is in the window, it was not given by a
  business, a foundation or a government (when the program counts individuals only: a personal
  gift, or one through a donor-advised fund or a family foundation), its fund and source are
  counted, it is not an anonymous gift above the program's anonymous limit, and no program
  exclusive with this one and before it in priority counts it (`claimed_by`, found by the caller);
- what the donor got back (fair market value: a ticket, merchandise) is deducted from a gift
  (the ledger records it on one-time gifts only: a membership's valuation does not look at it);
- reversals known at run time reduce it, whatever their date, and never raise it above what was
  paid; a gift reversed in full counts nothing (`refunded`);
- `installments`: every installment paid in the window counts like a one-time gift;
- `new_recurring_x12`: the donor's first-ever membership, when its first installment is paid in
  the window, is valued once at 12 x its monthly amount (an annual one: its annual amount) less
  the reversals on its installments in the window, instead of those installments; a monthly
  membership started before the window and raised during it counts each installment in the
  window at the old amount, and the increase 12 times (carried by the first installment paid at
  the new amount); every other membership counts its installments;
- matchable = min(cap, counted); the program-level cap limits the sum of the donors' matchable
  (`program_matchable`), never a donor's row; the cap is shared out over the donor's gifts in date order, the
  rest of a gift being its `over_cap` share;
- a new donor is one with no paid gift of any kind before the window.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime


class Period(enum.IntEnum):
    BEFORE = -1
    IN = 0
    AFTER = 1


class RecurringRule(enum.StrEnum):
    INSTALLMENTS = "installments"
    NEW_RECURRING_X12 = "new_recurring_x12"


class Reason(enum.StrEnum):
    # Included
    COUNTED = "counted"
    NEW_RECURRING_X12 = "new_recurring_x12"
    IN_RECURRING_VALUE = "in_recurring_value"
    INCREASE_X12 = "recurring_increase_x12"
    AT_OLD_AMOUNT = "installment_at_old_amount"
    # Excluded
    NOT_PAID = "not_paid"
    OUTSIDE_WINDOW = "outside_window"
    ORGANIZATION = "organization"
    FUND_NOT_COUNTED = "fund_not_counted"
    SOURCE_NOT_COUNTED = "source_not_counted"
    ANONYMOUS_OVER_LIMIT = "anonymous_over_limit"
    OTHER_PROGRAM = "counted_by_other_program"
    REFUNDED = "refunded"

    @property
    def included(self) -> bool:
        return self in _INCLUDED

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self]


_INCLUDED = frozenset(
    {Reason.COUNTED, Reason.NEW_RECURRING_X12, Reason.IN_RECURRING_VALUE, Reason.INCREASE_X12, Reason.AT_OLD_AMOUNT}
)
_EXPLANATIONS = {
    Reason.COUNTED: "Counted: paid in the window, net of reversals.",
    Reason.NEW_RECURRING_X12: "Counted: first installment of the donor's first membership, valued once at 12 x "
    "the monthly amount (an annual membership: its annual amount), net of reversals.",
    Reason.IN_RECURRING_VALUE: "Counted inside the membership's 12 x value (not added again).",
    Reason.INCREASE_X12: "Counted at the old amount, plus 12 x the increase made during the window.",
    Reason.AT_OLD_AMOUNT: "Counted at the membership's amount before its increase during the window.",
    Reason.NOT_PAID: "Not counted: the payment did not complete.",
    Reason.OUTSIDE_WINDOW: "Not counted: dated outside the program's window.",
    Reason.ORGANIZATION: "Not counted: given by a business, a foundation or a government; the program counts "
    "individuals only.",
    Reason.FUND_NOT_COUNTED: "Not counted: the program does not count this fund.",
    Reason.SOURCE_NOT_COUNTED: "Not counted: the program does not count this source.",
    Reason.ANONYMOUS_OVER_LIMIT: "Not counted: an anonymous gift above the program's limit for anonymous gifts.",
    Reason.OTHER_PROGRAM: "Not counted: counted by another program that this one is exclusive with.",
    Reason.REFUNDED: "Not counted: refunded or lost to a dispute in full.",
}
# The order in which a donor's exclusion reasons are listed.
EXCLUSION_ORDER = (
    Reason.NOT_PAID,
    Reason.OUTSIDE_WINDOW,
    Reason.ORGANIZATION,
    Reason.FUND_NOT_COUNTED,
    Reason.SOURCE_NOT_COUNTED,
    Reason.ANONYMOUS_OVER_LIMIT,
    Reason.OTHER_PROGRAM,
    Reason.REFUNDED,
)
OVER_CAP = "over_cap"


@dataclass(frozen=True)
class ProgramRules:
    first_day: date
    last_day: date
    cap_cents: int | None
    fund_ids: frozenset[int] | None  # None: every fund counts
    sources: frozenset[str]
    individuals_only: bool
    recurring_rule: RecurringRule
    anonymous_limit_cents: int | None = None  # anonymous gifts above it are not matchable
    deduct_fair_market_value: bool = True


@dataclass(frozen=True)
class LocalArea:
    """Where a program's local donors live: postal-code prefixes and/or states (empty: no area)."""

    postal_prefixes: tuple[str, ...] = ()
    states: tuple[str, ...] = ()

    @property
    def defined(self) -> bool:
        return bool(self.postal_prefixes or self.states)

    def contains(self, postal_code: str | None, region: str | None) -> bool:
        code = "".join((postal_code or "").split()).upper()
        if code and any(code.startswith("".join(p.split()).upper()) for p in self.postal_prefixes if p.strip()):
            return True
        state = (region or "").strip().casefold()
        return bool(state) and state in {s.strip().casefold() for s in self.states}


def program_matchable(matchable_cents: int, program_cap_cents: int | None) -> int:
    """The program's matchable total: the donors' matchable, stopped at the program-level cap."""
    return matchable_cents if program_cap_cents is None else min(matchable_cents, program_cap_cents)


@dataclass(slots=True)
class GiftFacts:
    """One gift (gift_id set, count 1) or a group of indistinguishable gifts (gift_id None).

    Not frozen, but never changed once made: a large report makes half a million of them, and a
    frozen dataclass is several times slower to create."""

    gift_id: int | None
    count: int
    period: Period
    paid: bool
    amount_cents: int  # the group's total
    reversed_cents: int  # the group's total; each gift's net reversal is within [0, its amount]
    fully_reversed: bool  # every gift of the group was reversed in full
    fund_id: int | None
    source: str | None
    organization: bool  # given by a business, a foundation or a government (its vehicle)
    membership_id: int | None = None
    membership_interval: str | None = None  # "month" | "year"
    first_at: datetime | None = None  # the (earliest) time the money moved: orders the gifts
    vehicle: str | None = None  # ledger.models.GiftVehicle, for the words; `organization` decides
    # An anonymous gift: grouped by amount in the database, so each gift's amount is known.
    anonymous: bool = False
    fair_market_value_cents: int = 0  # the group's total (a gift with one is a group of one)
    claimed_by: str | None = None  # the exclusive program before this one that counts the gift

    @property
    def unit_amount_cents(self) -> int:
        """Each installment's amount (installment groups are grouped by amount)."""
        return self.amount_cents // self.count

    @property
    def unit_reversed_cents(self) -> int:
        return self.reversed_cents // self.count

    @property
    def net_cents(self) -> int:
        return self.amount_cents - self.reversed_cents


@dataclass(frozen=True)
class Increase:
    """A membership's amount at the start of the window and after its last change in it."""

    old_cents: int
    new_cents: int


@dataclass(frozen=True)
class DonorFacts:
    gifts: Sequence[GiftFacts]
    increases: Mapping[int, Increase] = field(default_factory=dict)  # by membership id


@dataclass(slots=True)
class GiftResult:
    facts: GiftFacts
    reason: Reason
    counted_cents: int
    matchable_cents: int
    over_cap_cents: int
    # How many of the group's gifts have each reason, with their gross: a group carrying a
    # membership's 12 x value has one gift with that reason and the rest "in recurring value".
    breakdown: tuple[tuple[Reason, int, int], ...]


@dataclass(frozen=True)
class DonorResult:
    gifts: tuple[GiftResult, ...]  # in date order
    gifts_in_window: int
    gross_cents: int  # paid in the window, before reversals
    reversed_cents: int  # reversed from gifts paid in the window
    counted_cents: int
    matchable_cents: int
    new_donor: bool
    new_recurring: bool
    exclusion_reasons: tuple[str, ...]
    # The membership that made the donor a new recurring donor (reports show its status).
    new_recurring_membership_id: int | None = None

    @property
    def over_cap_cents(self) -> int:
        return self.counted_cents - self.matchable_cents


VEHICLE_WORDS = {
    "personal": "personal",
    "donor_advised_fund": "through a donor-advised fund",
    "family_foundation": "through a family foundation",
    "business": "by a business",
    "foundation": "by a foundation",
    "government": "by a government",
}


def describe(gift: GiftResult) -> str:
    """A gift's reason in words: which vehicle made it an individual's (or not), which program
    counted it instead, what fair market value was deducted."""
    facts = gift.facts
    words = gift.reason.explanation
    if gift.reason is Reason.OTHER_PROGRAM and facts.claimed_by:
        words = f"Not counted: counted by {facts.claimed_by}, which this program is exclusive with."
    vehicle = facts.vehicle
    if vehicle and vehicle != "personal" and (gift.reason.included or gift.reason is Reason.ORGANIZATION):
        counted_as = " (counted as the individual's gift)" if gift.reason.included else ""
        words += f" Given {VEHICLE_WORDS.get(vehicle, vehicle)}{counted_as}."
    if facts.fair_market_value_cents and gift.reason is Reason.COUNTED:
        words += f" Less ${facts.fair_market_value_cents / 100:,.2f} of fair market value received."
    return words


def _sort_key(facts: GiftFacts) -> tuple[object, ...]:
    """Date order. Gifts paid at the same instant are ordered by what a group shares with each of
    its gifts (every attribute the database groups by), so that a group sorts exactly where its
    earliest gift would, whatever order the rows came in: groups and gifts give the same numbers."""
    return (
        0 if facts.first_at is None else 1,  # a time is only ever compared with a time
        facts.first_at or datetime.min,
        facts.unit_amount_cents,
        facts.unit_reversed_cents,
        facts.membership_id or 0,
        facts.membership_interval or "",
        facts.period,
        facts.organization,
        facts.fully_reversed,
        facts.fund_id or 0,
        facts.source or "",
        facts.vehicle or "",
        facts.anonymous,
        facts.fair_market_value_cents,
        facts.claimed_by or "",
        facts.gift_id or 0,
    )


def exclusion(rules: ProgramRules, facts: GiftFacts) -> Reason | None:
    """Why a gift does not count whatever else the donor gave; None when it may count."""
    if not facts.paid:
        return Reason.NOT_PAID
    if facts.period is not Period.IN:
        return Reason.OUTSIDE_WINDOW
    if rules.individuals_only and facts.organization:
        return Reason.ORGANIZATION
    if rules.fund_ids is not None and facts.fund_id not in rules.fund_ids:
        return Reason.FUND_NOT_COUNTED
    if facts.source not in rules.sources:
        return Reason.SOURCE_NOT_COUNTED
    limit = rules.anonymous_limit_cents
    if limit is not None and facts.anonymous and facts.unit_amount_cents > limit:
        return Reason.ANONYMOUS_OVER_LIMIT
    if facts.claimed_by:
        return Reason.OTHER_PROGRAM
    return None


@dataclass
class _Valued:
    reason: Reason
    counted: int
    breakdown: list[tuple[Reason, int, int]]


def _split(facts: GiftFacts, first: Reason, rest: Reason) -> list[tuple[Reason, int, int]]:
    """One gift of the group carries `first`, the others `rest` (installment groups share one amount)."""
    unit = facts.unit_amount_cents
    parts = [(first, 1, unit)]
    if facts.count > 1:
        parts.append((rest, facts.count - 1, facts.amount_cents - unit))
    return parts


def _value_new_recurring(eligible: list[GiftFacts], out: dict[int, _Valued]) -> None:
    """The first-ever membership started in the window: valued once at 12 x (annual: 1 x)."""
    first = eligible[0]
    unit = first.unit_amount_cents
    value = unit * 12 if first.membership_interval == "month" else unit
    reversed_total = sum(f.reversed_cents for f in eligible)
    live = [f for f in eligible if not f.fully_reversed]
    # Reversed in full everywhere: nothing was given, whatever was promised.
    total = max(0, value - reversed_total) if live else 0
    carrier = live[0] if live else None
    for facts in eligible:
        if facts.fully_reversed:
            out[id(facts)] = _Valued(Reason.REFUNDED, 0, [(Reason.REFUNDED, facts.count, facts.amount_cents)])
        elif facts is carrier:
            parts = _split(facts, Reason.NEW_RECURRING_X12, Reason.IN_RECURRING_VALUE)
            out[id(facts)] = _Valued(Reason.NEW_RECURRING_X12, total, parts)
        else:
            parts = [(Reason.IN_RECURRING_VALUE, facts.count, facts.amount_cents)]
            out[id(facts)] = _Valued(Reason.IN_RECURRING_VALUE, 0, parts)


def _value_increase(eligible: list[GiftFacts], increase: Increase, out: dict[int, _Valued]) -> None:
    """A monthly membership started earlier and raised in the window: old amount, plus 12 x the increase."""
    old, raise_by = increase.old_cents, increase.new_cents - increase.old_cents
    # Chosen whatever was reversed, so that a reversal can only lower the total.
    carrier = next((f for f in eligible if f.unit_amount_cents >= increase.new_cents), None)
    for facts in eligible:
        if facts.fully_reversed:
            out[id(facts)] = _Valued(Reason.REFUNDED, 0, [(Reason.REFUNDED, facts.count, facts.amount_cents)])
            continue
        each = max(0, min(old, facts.unit_amount_cents) - facts.unit_reversed_cents)
        if facts is carrier:
            carried = max(0, min(old, facts.unit_amount_cents) + 12 * raise_by - facts.unit_reversed_cents)
            parts = _split(facts, Reason.INCREASE_X12, Reason.AT_OLD_AMOUNT)
            out[id(facts)] = _Valued(Reason.INCREASE_X12, carried + each * (facts.count - 1), parts)
        else:
            parts = [(Reason.AT_OLD_AMOUNT, facts.count, facts.amount_cents)]
            out[id(facts)] = _Valued(Reason.AT_OLD_AMOUNT, each * facts.count, parts)


def evaluate(rules: ProgramRules, donor: DonorFacts) -> DonorResult:
    """Counted and matchable cents for one donor, and every gift's reason.

    Run once per donor over the whole ledger: one pass over the gifts does the sums, and the
    membership rules are only looked at for donors who have a membership."""
    gifts = donor.gifts
    facts = sorted(gifts, key=_sort_key) if len(gifts) > 1 else list(gifts)
    excluded = [exclusion(rules, f) for f in facts]

    # Memberships, each by its first paid installment (whatever the window), in date order.
    first_installment: dict[int, GiftFacts] = {}
    for f in facts:
        if f.membership_id is not None and f.paid and f.membership_id not in first_installment:
            first_installment[f.membership_id] = f
    new_recurring_id = None
    valued: dict[int, _Valued] = {}
    if first_installment:
        excluded_by_id = {id(f): reason for f, reason in zip(facts, excluded, strict=True)}
        # The facts are in date order, so the first membership met is the earliest one.
        first_membership = next(iter(first_installment))
        opening = first_installment[first_membership]
        if opening.period is Period.IN and excluded_by_id[id(opening)] is None:
            new_recurring_id = first_membership
        if rules.recurring_rule is RecurringRule.NEW_RECURRING_X12:
            _value_memberships(donor, facts, excluded_by_id, first_installment, new_recurring_id, valued)

    results: list[GiftResult] = []
    cap = cap_left = rules.cap_cents
    counted_total = gifts_in_window = gross = reversed_in_window = 0
    new_donor = True
    reasons: set[Reason] = set()
    for f, reason in zip(facts, excluded, strict=True):
        period = f.period
        paid_in_window = f.paid and period is Period.IN
        if paid_in_window:
            gifts_in_window += f.count
            gross += f.amount_cents
            reversed_in_window += f.reversed_cents
        elif f.paid and period is Period.BEFORE:
            new_donor = False
        if reason is not None:
            results.append(GiftResult(f, reason, 0, 0, 0, ((reason, f.count, f.amount_cents),)))
            if paid_in_window:
                reasons.add(reason)  # an exclusion is never an included reason
            continue
        value = valued.get(id(f)) if valued else None
        if value is not None:
            reason, counted, breakdown = value.reason, value.counted, tuple(value.breakdown)
        elif f.fully_reversed:  # a plain gift (most of them): reversed in full, or its net
            reason, counted, breakdown = Reason.REFUNDED, 0, ((Reason.REFUNDED, f.count, f.amount_cents),)
        else:
            counted = f.amount_cents - f.reversed_cents
            if rules.deduct_fair_market_value and f.fair_market_value_cents:
                counted = max(0, counted - f.fair_market_value_cents)
            reason, breakdown = Reason.COUNTED, ((Reason.COUNTED, f.count, f.amount_cents),)
        if cap_left is None:
            matchable = counted
        else:
            matchable = min(counted, cap_left)
            cap_left -= matchable
        counted_total += counted
        results.append(GiftResult(f, reason, counted, matchable, counted - matchable, breakdown))
        if paid_in_window and not reason.included:
            reasons.add(reason)

    matchable_total = counted_total if cap is None else min(cap, counted_total)
    exclusion_reasons = [str(r) for r in EXCLUSION_ORDER if r in reasons] if reasons else []
    if matchable_total < counted_total:
        exclusion_reasons.append(OVER_CAP)
    return DonorResult(
        gifts=tuple(results),
        gifts_in_window=gifts_in_window,
        gross_cents=gross,
        reversed_cents=reversed_in_window,
        counted_cents=counted_total,
        matchable_cents=matchable_total,
        new_donor=new_donor,
        new_recurring=new_recurring_id is not None,
        exclusion_reasons=tuple(exclusion_reasons),
        new_recurring_membership_id=new_recurring_id,
    )


def _value_memberships(
    donor: DonorFacts,
    facts: list[GiftFacts],
    excluded: dict[int, Reason | None],
    first_installment: dict[int, GiftFacts],
    new_recurring_id: int | None,
    out: dict[int, _Valued],
) -> None:
    """`new_recurring_x12`: the memberships whose installments are not valued as plain gifts."""
    for membership_id, opening in first_installment.items():
        eligible = [f for f in facts if f.membership_id == membership_id and excluded[id(f)] is None]
        if not eligible:
            continue
        if membership_id == new_recurring_id:
            _value_new_recurring(eligible, out)
            continue
        increase = donor.increases.get(membership_id)
        started_earlier = opening.period is Period.BEFORE
        if (
            increase is not None
            and increase.new_cents > increase.old_cents
            and started_earlier
            and opening.membership_interval == "month"
        ):
            _value_increase(eligible, increase, out)
