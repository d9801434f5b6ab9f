"""One row per gift dated in a span, each followed by its reversals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row

from donations.clock import local_date
from donations.grants import queries, row_streams
from donations.grants.queries import Window
from donations.grants.reports.base import (
    FREQUENCY_LABELS,
    REASON_LABELS,
    REVERSAL_LABELS,
    SOURCE_LABELS,
    VEHICLE_LABELS,
    Cell,
    Context,
    Money,
    Report,
    counting_date,
    deductible_words,
    donor_label,
    tax_notes,
)
from donations.grants.reports.evaluation import (
    MembershipState,
    gift_facts,
    group_facts,
    membership_increases,
    membership_states,
)
from donations.grants.rules import DonorFacts, GiftResult, Period, describe, evaluate

LEDGER_COLUMNS = (
    "Gift ID",
    "Reversal ID",
    "Date counted",
    "Date received",
    "Postmarked",
    "Donor ID",
    "Donor",
    "Fund",
    "Source",
    "Frequency",
    "Given as",
    "Membership ID",
    "Membership status",
    "Membership canceled",
    "Gross ($)",
    "Fee covered ($)",
    "Stripe fee ($)",
    "Net after Stripe fee ($)",
    "Reversal ($)",
    "Counted ($)",
    "Matchable ($)",
    "Over the cap ($)",
    "Reason",
    "Explanation",
    "Tax deductible",
    # Machine-readable codes beside the words: CSV only (Report.csv_only).
    "reason_code",
    "source_code",
    "frequency_code",
    "vehicle_code",
    "tax_deductible",
)
CODE_COLUMNS = LEDGER_COLUMNS[-5:]


def ledger(ctx: Context) -> Report:
    params = ctx.params
    assert params.first_day is not None and params.last_day is not None
    span = Window.of(params.first_day, params.last_day, ctx.zone)
    report = Report(
        kind="ledger",
        title=f"{ctx.settings.name}: gift ledger {params.first_day.isoformat()} to {params.last_day.isoformat()}",
        columns=LEDGER_COLUMNS,
        rows=iter(()),
        context=ctx,
        notes=(
            "One row per gift, each followed by its reversals; grouped by donor, in date order. "
            "A gift's Counted amount is already net of its reversals. Membership status and "
            "cancellation: the gift's membership, as it stands now.",
            *tax_notes(ctx),
        ),
        csv_only=CODE_COLUMNS,
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        window = ctx.window
        rules = ctx.rules
        gifts = row_streams.by_owner(row_streams.stream(queries.gifts_stmt(window, span, ctx.claimants)))
        context_groups = row_streams.by_owner(row_streams.stream(queries.donor_groups_stmt(window, (Period.BEFORE,))))
        changes = row_streams.by_owner(row_streams.stream(queries.increases_stmt(window)))
        reversals = row_streams.by_owner(row_streams.stream(queries.ledger_reversals_stmt(window, span)))
        # Plain locals, not dicts: they are added to a million times.
        gross = reversed_total = counted = matchable = 0
        gift_count = reversal_count = donors_counted = 0
        zone = ctx.zone
        states = membership_states(ctx)
        for _owner, gift_rows, (before, increase_rows, reversal_rows) in row_streams.merge_by_owner(
            gifts, context_groups, changes, reversals
        ):
            by_id = {row.id: row for row in gift_rows}
            # One anonymous gift makes the donor "Anonymous" on every row: the same donor id
            # beside their name on another row would say who gave it.
            anonymous = any(row.anonymous for row in gift_rows)
            facts = [gift_facts(row) for row in gift_rows] + [group_facts(row) for row in before]
            result = evaluate(rules, DonorFacts(facts, membership_increases(increase_rows)))
            donors_counted += result.counted_cents > 0
            reversals_of: dict[int, list[Row[*tuple[Any, ...]]]] = {}
            for row in reversal_rows:
                reversals_of.setdefault(row.gift_id, []).append(row)
            for gift in result.gifts:
                if gift.facts.gift_id is None:
                    continue
                row = by_id[gift.facts.gift_id]
                if not row.in_span:
                    continue  # counted in the window but dated outside the span: context only
                gross += row.amount_cents
                counted += gift.counted_cents
                matchable += gift.matchable_cents
                gift_count += 1
                yield _ledger_gift_row(ctx, row, gift, anonymous, states)
                if reversals_of:
                    for reversal in reversals_of.get(row.id, ()):
                        reversed_total += reversal.amount_cents
                        reversal_count += 1
                        yield _ledger_reversal_row(zone, row, reversal, anonymous, states)
        report.totals.update(
            {
                "gross_cents": gross,
                "reversals_cents": reversed_total,
                "counted_cents": counted,
                "matchable_cents": matchable,
                "gifts": gift_count,
                "reversals": reversal_count,
                "donors_counted": donors_counted,
            }
        )

    report.rows = rows()
    return report


def _membership_cells(membership_id: int | None, states: dict[int, MembershipState]) -> tuple[Cell, Cell]:
    state = states.get(membership_id) if membership_id is not None else None
    return (None, None) if state is None else (state.words(), state.canceled_on)


def _ledger_gift_row(
    ctx: Context,
    row: Row[*tuple[Any, ...]],
    gift: GiftResult,
    anonymous: bool,
    states: dict[int, MembershipState],
) -> tuple[Cell, ...]:
    """A gift's row (`row` from queries.gifts_stmt, unpacked by position as in evaluation.py)."""
    (
        owner,
        _period,
        _in_span,
        gift_id,
        _donor_id,
        fund_id,
        membership_id,
        amount,
        fee_covered,
        stripe_fee,
        net,
        frequency,
        source,
        _status,
        received_at,
        postmarked_on,
        _check_number,
        _anonymous,
        _organization,
        tax_deductible,
        _currency,
        _is_organization,
        _reversed,
        _membership_interval,
        fund_name,
        donor_name,
        vehicle,
        _fair_value,
        _claimed_by,
    ) = row
    zone = ctx.zone
    reason = gift.reason
    return (
        gift_id,
        None,
        counting_date(received_at, postmarked_on, zone),
        local_date(received_at, zone),
        postmarked_on,
        owner,
        donor_label(donor_name, anonymous),
        fund_name,
        SOURCE_LABELS.get(source, source),
        FREQUENCY_LABELS.get(frequency, frequency),
        VEHICLE_LABELS.get(vehicle, vehicle),
        membership_id,
        *_membership_cells(membership_id, states),
        Money(amount),
        Money(fee_covered),
        None if stripe_fee is None else Money(stripe_fee),
        None if net is None else Money(net),
        None,
        Money(gift.counted_cents),
        Money(gift.matchable_cents),
        Money(gift.over_cap_cents),
        REASON_LABELS.get(reason, reason.value),
        describe(gift),
        deductible_words(ctx, fund_id, tax_deductible),
        reason.value,
        source,
        frequency,
        vehicle,
        "true" if tax_deductible else "false",
    )


def _ledger_reversal_row(
    zone: ZoneInfo,
    row: Row[*tuple[Any, ...]],
    reversal: Row[*tuple[Any, ...]],
    anonymous: bool,
    states: dict[int, MembershipState],
) -> tuple[Cell, ...]:
    """A reversal's row, after its gift's (`reversal` from queries.ledger_reversals_stmt)."""
    kind = reversal.kind
    words = REVERSAL_LABELS.get(kind, kind)
    return (
        row.id,
        reversal.id,
        None,
        local_date(reversal.reversed_at, zone),
        None,
        row.owner,
        donor_label(row.donor_name, anonymous),
        row.fund_name,
        SOURCE_LABELS.get(row.source, row.source),
        FREQUENCY_LABELS.get(row.frequency, row.frequency),
        VEHICLE_LABELS.get(row.vehicle, row.vehicle),
        row.membership_id,
        *_membership_cells(row.membership_id, states),
        None,
        None,
        None,
        None,
        Money(reversal.amount_cents),
        None,
        None,
        None,
        words,
        f"{words} of gift {row.id}: already deducted from its Counted amount.",
        None,
        kind,
        row.source,
        row.frequency,
        row.vehicle,
        "true" if row.tax_deductible else "false",
    )
