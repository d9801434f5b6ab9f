"""Donors with the program's rules applied: what the summary and donors reports count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, select

from donations.clock import local_date
from donations.extensions import db
from donations.grants import queries, row_streams
from donations.grants.reports.base import MEMBERSHIP_STATUS_LABELS, Context
from donations.grants.rules import (
    DonorFacts,
    DonorResult,
    GiftFacts,
    Increase,
    Period,
    Reason,
    evaluate,
    program_matchable,
)
from donations.ledger.models import Membership


@dataclass(frozen=True, slots=True)
class MembershipState:
    """A membership as the reports show it beside its counted installments."""

    status: str
    canceled_at: datetime | None
    canceled_on: date | None  # local
    ending: bool  # set to cancel at the end of the period paid for

    def words(self) -> str:
        words = MEMBERSHIP_STATUS_LABELS.get(self.status, self.status)
        return f"{words}, ends with the period paid for" if self.ending and self.status != "canceled" else words


def membership_states(ctx: Context) -> dict[int, MembershipState]:
    """Every membership's status and cancellation, as of now (memberships keep no history of
    their status). A few rows per member: loaded once per report, looked up per gift."""
    rows = db.session.execute(
        select(Membership.id, Membership.status, Membership.canceled_at, Membership.cancel_at_period_end)
    )
    return {
        membership_id: MembershipState(
            status, canceled_at, local_date(canceled_at, ctx.zone) if canceled_at else None, bool(ending)
        )
        for membership_id, status, canceled_at, ending in rows
    }


def canceled_in_window(state: MembershipState | None, ctx: Context) -> bool:
    window = ctx.window
    return state is not None and state.canceled_at is not None and window.start <= state.canceled_at < window.end


@dataclass(frozen=True)
class EvaluatedDonor:
    owner: int
    name: str | None
    email: str | None
    organization: str | None
    anonymous: bool
    result: DonorResult
    local: bool | None = None  # None: the program has no local area


# Rows are unpacked by position, every column named, in the order of the query's select: a
# report reads one row per gift or group, and reading a Row's attribute costs more than twice
# unpacking the whole row (bench/FINDINGS.md, "Grant reports: plain versions").


def group_facts(row: Row[*tuple[Any, ...]]) -> GiftFacts:
    """A group of a donor's gifts that the rules cannot tell apart (queries.donor_groups_stmt)."""
    (
        _owner,
        period,
        membership_id,
        membership_interval,
        fund_id,
        source,
        organization,
        fully_reversed,
        _unit_amount,
        _unit_reversed,
        vehicle,
        anonymous_amount,
        _fair_value_gift,
        claimed_by,
        count,
        amount,
        reversed_,
        fair_value,
        first_at,
        _anonymous,
        _donor_name,
        _donor_email,
        _donor_organization,
        _donor_postal_code,
        _donor_region,
    ) = row
    return GiftFacts(
        gift_id=None,
        count=count,
        period=Period(period),
        paid=True,
        amount_cents=amount,
        reversed_cents=reversed_,
        fully_reversed=bool(fully_reversed),
        fund_id=fund_id,
        source=source,
        organization=bool(organization),
        membership_id=membership_id,
        membership_interval=membership_interval,
        first_at=first_at,
        vehicle=vehicle,
        anonymous=anonymous_amount is not None,
        fair_market_value_cents=fair_value,
        claimed_by=claimed_by,
    )


def gift_facts(row: Row[*tuple[Any, ...]]) -> GiftFacts:
    """One gift (queries.gifts_stmt)."""
    (
        _owner,
        period,
        _in_span,
        gift_id,
        _donor_id,
        fund_id,
        membership_id,
        amount,
        _fee_covered,
        _stripe_fee,
        _net,
        _frequency,
        source,
        _status,
        received_at,
        _postmarked_on,
        _check_number,
        _anonymous,
        _organization,
        _tax_deductible,
        _currency,
        is_organization,
        reversed_,
        membership_interval,
        _fund_name,
        _donor_name,
        vehicle,
        fair_value,
        claimed_by,
    ) = row
    return GiftFacts(
        gift_id=gift_id,
        count=1,
        period=Period(period),
        paid=True,
        amount_cents=amount,
        reversed_cents=reversed_,
        fully_reversed=reversed_ >= amount,
        fund_id=fund_id,
        source=source,
        organization=bool(is_organization),
        membership_id=membership_id,
        membership_interval=membership_interval,
        first_at=received_at,
        vehicle=vehicle,
        anonymous=bool(_anonymous),
        fair_market_value_cents=fair_value or 0,
        claimed_by=claimed_by,
    )


def membership_increases(rows: Sequence[Row[*tuple[Any, ...]]]) -> dict[int, Increase]:
    """Per membership: the amount before its first change in the window, after its last."""
    increases: dict[int, Increase] = {}
    for _owner, membership_id, old_cents, new_cents in rows:
        earlier = increases.get(membership_id)
        old = earlier.old_cents if earlier else old_cents
        increases[membership_id] = Increase(old_cents=old, new_cents=new_cents)
    return increases


ANONYMOUS_COLUMN = 19  # the position of donor_groups_stmt's "anonymous", as unpacked in group_facts


def evaluated_donors(ctx: Context) -> Iterator[EvaluatedDonor]:
    """Every donor who paid anything in the window, with the rules applied, in donor order."""
    window = ctx.window
    rules = ctx.rules
    # Only ordered among themselves: the driver's times will do (see queries.donor_groups).
    area = ctx.local_area
    stmt = queries.donor_groups_stmt(window, raw_times=True, claimants=ctx.claimants)
    groups = row_streams.by_owner(row_streams.stream(stmt))
    changes = row_streams.by_owner(row_streams.stream(queries.increases_stmt(window)))
    for owner, rows, (increase_rows,) in row_streams.merge_by_owner(groups, changes):
        # Its "period" and "anonymous" columns, by position as in group_facts: most donors in
        # the ledger gave nothing in the window and are passed over here.
        in_window = [row for row in rows if row[1] == Period.IN]
        if not in_window:
            continue
        anonymous = any(row[ANONYMOUS_COLUMN] for row in in_window)
        result = evaluate(rules, DonorFacts([group_facts(row) for row in rows], membership_increases(increase_rows)))
        first = rows[0]
        # Reports leave the newsroom: an anonymous donor is only its id, nothing to find them by.
        yield EvaluatedDonor(
            owner=owner,
            name=None if anonymous else first.donor_name,
            email=None if anonymous else first.donor_email,
            organization=None if anonymous else first.donor_organization,
            anonymous=anonymous,
            result=result,
            local=area.contains(first.donor_postal_code, first.donor_region) if area.defined else None,
        )


@dataclass
class ProgramTotals:
    counted_cents: int = 0
    matchable_cents: int = 0
    gross_cents: int = 0
    reversed_cents: int = 0
    donors_in_window: int = 0
    donors_counted: int = 0
    new_donors: int = 0
    new_recurring_donors: int = 0
    # New recurring donors whose new membership was canceled within the window (NewsMatch
    # counts it 12 x all the same: no published rule says otherwise; the funder sees it).
    new_recurring_canceled: int = 0
    gifts_in_window: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    gross_by_reason: Counter[str] = field(default_factory=Counter)
    program_cap_cents: int | None = None
    local_area: bool = False
    local_donors: int = 0
    local_counted_cents: int = 0

    def add(self, result: DonorResult, local: bool | None = None, *, canceled_in_window: bool = False) -> None:
        if local and result.counted_cents > 0:
            self.local_donors += 1
            self.local_counted_cents += result.counted_cents
        self.counted_cents += result.counted_cents
        self.matchable_cents += result.matchable_cents
        self.gross_cents += result.gross_cents
        self.reversed_cents += result.reversed_cents
        self.gifts_in_window += result.gifts_in_window
        self.donors_in_window += 1
        if result.counted_cents > 0:
            self.donors_counted += 1
            self.new_donors += result.new_donor
            self.new_recurring_donors += result.new_recurring
            self.new_recurring_canceled += result.new_recurring and canceled_in_window
        for gift in result.gifts:
            if gift.facts.paid and gift.facts.period is Period.IN:
                for reason, count, gross in gift.breakdown:
                    self.by_reason[reason] += count
                    self.gross_by_reason[reason] += gross

    @property
    def gifts_counted(self) -> int:
        return sum(n for reason, n in self.by_reason.items() if Reason(reason).included)

    @property
    def matchable_after_program_cap_cents(self) -> int:
        return program_matchable(self.matchable_cents, self.program_cap_cents)

    def as_dict(self) -> dict[str, Any]:
        data = self._as_dict()
        if self.program_cap_cents is not None:
            data["program_cap_cents"] = self.program_cap_cents
            data["matchable_before_program_cap_cents"] = self.matchable_cents
            data["matchable_after_program_cap_cents"] = self.matchable_after_program_cap_cents
        if self.local_area:
            data["local_donors"] = self.local_donors
            data["local_counted_cents"] = self.local_counted_cents
        return data

    def _as_dict(self) -> dict[str, Any]:
        return {
            "counted_cents": self.counted_cents,
            "matchable_cents": self.matchable_cents,
            "over_cap_cents": self.counted_cents - self.matchable_cents,
            "gross_cents": self.gross_cents,
            "reversed_cents": self.reversed_cents,
            "donors_counted": self.donors_counted,
            "new_donors": self.new_donors,
            "returning_donors": self.donors_counted - self.new_donors,
            "new_recurring_donors": self.new_recurring_donors,
            "new_recurring_canceled_in_window": self.new_recurring_canceled,
            "gifts_in_window": self.gifts_in_window,
            "gifts_counted": self.gifts_counted,
            "gifts_by_reason": dict(sorted(self.by_reason.items())),
        }


def program_totals(ctx: Context) -> ProgramTotals:
    totals = new_totals(ctx)
    states = membership_states(ctx)
    for donor in evaluated_donors(ctx):
        totals.add(donor.result, donor.local, canceled_in_window=new_recurring_canceled(donor.result, states, ctx))
    return totals


def new_recurring_canceled(result: DonorResult, states: dict[int, MembershipState], ctx: Context) -> bool:
    membership_id = result.new_recurring_membership_id
    return membership_id is not None and canceled_in_window(states.get(membership_id), ctx)


def new_totals(ctx: Context) -> ProgramTotals:
    return ProgramTotals(program_cap_cents=ctx.settings.program_cap_cents, local_area=ctx.local_area.defined)


def reversed_gift_facts(row: Row[*tuple[Any, ...]], period: Period) -> GiftFacts:
    """The facts about a reversal's gift that decide whether a program counts it at all."""
    return GiftFacts(
        gift_id=row.gift_id,
        count=1,
        period=period,
        paid=True,
        amount_cents=row.gift_amount_cents,
        reversed_cents=0,
        fully_reversed=False,
        fund_id=row.fund_id,
        source=row.source,
        organization=bool(row.is_organization),
    )
