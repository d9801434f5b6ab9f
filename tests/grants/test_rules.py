"""The grant rules, one table row per rule and edge, then Hypothesis properties.

Pure: no database. Gifts are `GiftFacts` as queries.py would build them.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from donations.grants.rules import (
    OVER_CAP,
    DonorFacts,
    GiftFacts,
    Increase,
    Period,
    ProgramRules,
    Reason,
    RecurringRule,
    evaluate,
)

BEFORE, IN, AFTER = Period.BEFORE, Period.IN, Period.AFTER
X12 = RecurringRule.NEW_RECURRING_X12
INSTALLMENTS = RecurringRule.INSTALLMENTS
ALL_SOURCES = frozenset({"stripe", "check", "cash", "other"})
T0 = datetime(2026, 10, 1, tzinfo=UTC)
_ids = itertools.count(1)


def program(**changes: object) -> ProgramRules:
    base = ProgramRules(
        first_day=date(2026, 11, 1),
        last_day=date(2026, 12, 31),
        cap_cents=100_000,
        fund_ids=None,
        sources=ALL_SOURCES,
        individuals_only=True,
        recurring_rule=INSTALLMENTS,
    )
    return replace(base, **changes)


def gift(
    amount: int,
    *,
    period: Period = IN,
    reversed_: int = 0,
    fund: int = 1,
    source: str = "stripe",
    organization: bool = False,
    membership: int | None = None,
    interval: str | None = None,
    day: int | None = None,
    paid: bool = True,
) -> GiftFacts:
    gift_id = next(_ids)
    return GiftFacts(
        gift_id=gift_id,
        count=1,
        period=period,
        paid=paid,
        amount_cents=amount,
        reversed_cents=reversed_,
        fully_reversed=reversed_ >= amount,
        fund_id=fund,
        source=source,
        organization=organization,
        membership_id=membership,
        membership_interval=interval if interval or membership is None else "month",
        first_at=T0 + timedelta(days=day if day is not None else gift_id),
    )


def installment(amount: int, membership: int, day: int, **kwargs: object) -> GiftFacts:
    period = BEFORE if day < 31 else IN if day <= 91 else AFTER  # T0 + 31 days is Nov 1
    return gift(amount, membership=membership, day=day, period=kwargs.pop("period", period), **kwargs)


@dataclass
class Case:
    name: str
    gifts: list[GiftFacts]
    counted: int
    matchable: int
    reasons: list[Reason]  # of the gifts in date order
    rules: ProgramRules = field(default_factory=program)
    increases: dict[int, Increase] = field(default_factory=dict)
    new_donor: bool = True
    new_recurring: bool = False


CASES = [
    Case("a gift in the window counts", [gift(5_000)], 5_000, 5_000, [Reason.COUNTED]),
    Case(
        "gifts before and after the window do not count; a gift before makes a returning donor",
        [gift(5_000, period=BEFORE, day=1), gift(7_000, period=AFTER, day=200)],
        0,
        0,
        [Reason.OUTSIDE_WINDOW, Reason.OUTSIDE_WINDOW],
        new_donor=False,
    ),
    Case("a gift for an organization is excluded", [gift(5_000, organization=True)], 0, 0, [Reason.ORGANIZATION]),
    Case(
        "a gift for an organization counts when the program is not individuals only",
        [gift(5_000, organization=True)],
        5_000,
        5_000,
        [Reason.COUNTED],
        rules=program(individuals_only=False),
    ),
    Case(
        "a fund the program does not count",
        [gift(5_000, fund=2), gift(1_000, fund=1)],
        1_000,
        1_000,
        [Reason.FUND_NOT_COUNTED, Reason.COUNTED],
        rules=program(fund_ids=frozenset({1})),
    ),
    Case(
        "a source the program does not count (cash)",
        [gift(5_000, source="cash"), gift(2_000, source="check")],
        2_000,
        2_000,
        [Reason.SOURCE_NOT_COUNTED, Reason.COUNTED],
        rules=program(sources=frozenset({"stripe", "check"})),
    ),
    Case("a payment that did not complete", [gift(5_000, paid=False)], 0, 0, [Reason.NOT_PAID]),
    Case(
        "the cap is reached by several gifts",
        [gift(60_000), gift(30_000), gift(40_000)],
        130_000,
        100_000,
        [Reason.COUNTED] * 3,
    ),
    Case("no cap: matchable is counted", [gift(260_000)], 260_000, 260_000, [Reason.COUNTED], program(cap_cents=None)),
    Case("a partial refund reduces the gift", [gift(5_000, reversed_=2_000)], 3_000, 3_000, [Reason.COUNTED]),
    Case(
        "a full refund or lost dispute counts nothing",
        [gift(5_000, reversed_=5_000), gift(1_000)],
        1_000,
        1_000,
        [Reason.REFUNDED, Reason.COUNTED],
    ),
    Case(
        "a refund brings a donor over the cap back under it",
        [gift(80_000), gift(50_000, reversed_=40_000)],
        90_000,
        90_000,
        [Reason.COUNTED, Reason.COUNTED],
    ),
    Case(
        "installments rule: each installment paid in the window counts",
        [installment(2_500, 7, 40), installment(2_500, 7, 70), installment(2_500, 7, 100)],
        5_000,
        5_000,
        [Reason.COUNTED, Reason.COUNTED, Reason.OUTSIDE_WINDOW],
        new_recurring=True,
    ),
    Case(
        "x12: a new recurring donor's first membership counts 12 x its monthly amount, valued once",
        [installment(2_500, 7, 40), installment(2_500, 7, 70)],
        30_000,
        30_000,
        [Reason.NEW_RECURRING_X12, Reason.IN_RECURRING_VALUE],
        rules=program(recurring_rule=X12),
        new_recurring=True,
    ),
    Case(
        "x12: the 12 x value is capped like anything else",
        [installment(10_000, 7, 40), gift(5_000, day=50)],
        125_000,
        100_000,
        [Reason.NEW_RECURRING_X12, Reason.COUNTED],
        rules=program(recurring_rule=X12),
        new_recurring=True,
    ),
    Case(
        "x12: an annual membership counts its annual amount",
        [installment(12_000, 7, 40, interval="year")],
        12_000,
        12_000,
        [Reason.NEW_RECURRING_X12],
        rules=program(recurring_rule=X12),
        new_recurring=True,
    ),
    Case(
        "x12: a refund of an installment reduces the 12 x value",
        [installment(2_500, 7, 40, reversed_=1_000), installment(2_500, 7, 70)],
        29_000,
        29_000,
        [Reason.NEW_RECURRING_X12, Reason.IN_RECURRING_VALUE],
        rules=program(recurring_rule=X12),
        new_recurring=True,
    ),
    Case(
        "x12: every installment refunded in full: nothing counts",
        [installment(2_500, 7, 40, reversed_=2_500)],
        0,
        0,
        [Reason.REFUNDED],
        rules=program(recurring_rule=X12),
        new_recurring=True,
    ),
    Case(
        "x12: a membership started before the window counts only its installments in the window",
        [installment(2_500, 7, 10), installment(2_500, 7, 40), installment(2_500, 7, 70)],
        5_000,
        5_000,
        [Reason.OUTSIDE_WINDOW, Reason.COUNTED, Reason.COUNTED],
        rules=program(recurring_rule=X12),
        new_donor=False,
    ),
    Case(
        "x12: a second membership started in the window counts its installments",
        [installment(1_000, 7, 10), installment(2_000, 8, 40), installment(2_000, 8, 70)],
        4_000,
        4_000,
        [Reason.OUTSIDE_WINDOW, Reason.COUNTED, Reason.COUNTED],
        rules=program(recurring_rule=X12),
        new_donor=False,
    ),
    Case(
        "x12: a membership raised in the window counts the old amount, plus 12 x the increase once",
        [installment(1_000, 7, 10), installment(1_000, 7, 40), installment(1_500, 7, 70), installment(1_500, 7, 85)],
        1_000 + (1_000 + 12 * 500) + 1_000,
        9_000,
        [Reason.OUTSIDE_WINDOW, Reason.AT_OLD_AMOUNT, Reason.INCREASE_X12, Reason.AT_OLD_AMOUNT],
        rules=program(recurring_rule=X12),
        increases={7: Increase(old_cents=1_000, new_cents=1_500)},
        new_donor=False,
    ),
    Case(
        "x12: a raise with no installment paid at the new amount in the window adds nothing",
        [installment(1_000, 7, 10), installment(1_000, 7, 40)],
        1_000,
        1_000,
        [Reason.OUTSIDE_WINDOW, Reason.AT_OLD_AMOUNT],
        rules=program(recurring_rule=X12),
        increases={7: Increase(old_cents=1_000, new_cents=1_500)},
        new_donor=False,
    ),
    Case(
        "installments rule: a raise counts only what was paid",
        [installment(1_000, 7, 10), installment(1_000, 7, 40), installment(1_500, 7, 70)],
        2_500,
        2_500,
        [Reason.OUTSIDE_WINDOW, Reason.COUNTED, Reason.COUNTED],
        increases={7: Increase(old_cents=1_000, new_cents=1_500)},
        new_donor=False,
    ),
    Case(
        "x12: a decrease is not an increase",
        [installment(1_500, 7, 10), installment(1_000, 7, 40)],
        1_000,
        1_000,
        [Reason.OUTSIDE_WINDOW, Reason.COUNTED],
        rules=program(recurring_rule=X12),
        increases={7: Increase(old_cents=1_500, new_cents=1_000)},
        new_donor=False,
    ),
    Case(
        "x12: a first membership for a fund the program does not count is not a new recurring one",
        [installment(2_500, 7, 40, fund=2), installment(2_000, 8, 50)],
        2_000,
        2_000,
        [Reason.FUND_NOT_COUNTED, Reason.COUNTED],
        rules=program(recurring_rule=X12, fund_ids=frozenset({1})),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_rule(case: Case) -> None:
    result = evaluate(case.rules, DonorFacts(case.gifts, case.increases))
    assert [g.reason for g in result.gifts] == case.reasons
    assert result.counted_cents == case.counted
    assert result.matchable_cents == case.matchable
    assert sum(g.counted_cents for g in result.gifts) == case.counted
    assert sum(g.matchable_cents for g in result.gifts) == case.matchable
    assert result.new_donor is case.new_donor
    assert result.new_recurring is case.new_recurring


def test_over_cap_share_falls_on_the_gift_that_crosses_the_cap() -> None:
    result = evaluate(program(), DonorFacts([gift(60_000), gift(30_000), gift(40_000), gift(5_000)]))
    assert [(g.matchable_cents, g.over_cap_cents) for g in result.gifts] == [
        (60_000, 0),
        (30_000, 0),
        (10_000, 30_000),
        (0, 5_000),
    ]
    assert OVER_CAP in result.exclusion_reasons


def test_exclusion_reasons_list_each_reason_once_in_a_fixed_order() -> None:
    gifts = [gift(100, source="cash"), gift(100, organization=True), gift(100, source="cash"), gift(100)]
    result = evaluate(program(sources=frozenset({"stripe"})), DonorFacts(gifts))
    assert result.exclusion_reasons == ("organization", "source_not_counted")
    assert result.gifts_in_window == 4
    assert result.gross_cents == 400


# --- properties ------------------------------------------------------------------------------------

amounts = st.integers(min_value=1, max_value=300_000)


@st.composite
def donor_facts(draw: st.DrawFn) -> tuple[ProgramRules, DonorFacts]:
    """A donor's gifts: one-time gifts and installments of up to three memberships, in any period,
    with partial or full reversals, and perhaps a raise of each membership."""
    rules = program(
        cap_cents=draw(st.none() | st.integers(min_value=1, max_value=200_000)),
        recurring_rule=draw(st.sampled_from(list(RecurringRule))),
        fund_ids=draw(st.none() | st.just(frozenset({1}))),
        sources=draw(st.sampled_from([ALL_SOURCES, frozenset({"stripe", "check"})])),
        individuals_only=draw(st.booleans()),
    )
    gifts = []
    intervals = {m: draw(st.sampled_from(["month", "month", "year"])) for m in (7, 8, 9)}  # a membership's own
    # Days may repeat: gifts paid at the same instant must still be ordered the same way.
    days = st.sampled_from([10, 40, 40, 40, 70]) | st.integers(min_value=0, max_value=120)
    for day in sorted(draw(st.lists(days, min_size=1, max_size=12))):
        amount = draw(amounts)
        reversed_ = draw(st.sampled_from([0, 0, amount, draw(st.integers(min_value=0, max_value=amount))]))
        membership = draw(st.none() | st.sampled_from([7, 7, 8, 9]))
        gifts.append(
            installment(
                amount,
                membership or 0,
                day,
                reversed_=reversed_,
                fund=draw(st.sampled_from([1, 1, 2])),
                source=draw(st.sampled_from(["stripe", "stripe", "check", "cash"])),
                organization=draw(st.booleans()) and draw(st.booleans()),
                interval=intervals.get(membership or 0, "month"),
            )
        )
        if membership is None:
            gifts[-1] = replace(gifts[-1], membership_id=None, membership_interval=None)
    increases = {
        m: Increase(old, draw(amounts)) for m, old in ((m, draw(amounts)) for m in (7, 8, 9)) if draw(st.booleans())
    }
    return rules, DonorFacts(gifts, increases)


def net_in_window(facts: DonorFacts) -> int:
    return sum(g.net_cents for g in facts.gifts if g.paid and g.period is IN)


@given(donor_facts())
@settings(max_examples=400)
def test_matchable_never_exceeds_the_cap_nor_under_installments_the_net_total(case) -> None:
    rules, facts = case
    result = evaluate(rules, facts)
    assert 0 <= result.matchable_cents <= result.counted_cents
    if rules.cap_cents is not None:
        assert result.matchable_cents <= rules.cap_cents
    if rules.recurring_rule is INSTALLMENTS:
        assert result.counted_cents <= net_in_window(facts)
    assert sum(g.matchable_cents for g in result.gifts) == result.matchable_cents
    assert sum(g.counted_cents for g in result.gifts) == result.counted_cents


@given(donor_facts(), st.data())
@settings(max_examples=400)
def test_adding_a_reversal_never_raises_a_total(case, data) -> None:
    rules, facts = case
    index = data.draw(st.integers(min_value=0, max_value=len(facts.gifts) - 1))
    target = facts.gifts[index]
    extra = data.draw(st.integers(min_value=1, max_value=target.amount_cents))
    reversed_ = min(target.amount_cents, target.reversed_cents + extra)
    more = replace(target, reversed_cents=reversed_, fully_reversed=reversed_ == target.amount_cents)
    after = DonorFacts([*facts.gifts[:index], more, *facts.gifts[index + 1 :]], facts.increases)
    before_result, after_result = evaluate(rules, facts), evaluate(rules, after)
    assert after_result.counted_cents <= before_result.counted_cents
    assert after_result.matchable_cents <= before_result.matchable_cents


def grouped(facts: DonorFacts) -> DonorFacts:
    """The donor's gifts grouped as queries.donor_groups groups them in SQL."""
    groups: dict[tuple[object, ...], list[GiftFacts]] = {}
    for g in facts.gifts:
        inside = g.period is IN
        installment_inside = inside and g.membership_id is not None
        key = (
            g.period,
            g.membership_id,
            g.membership_interval,
            g.fund_id if inside else None,
            g.source if inside else None,
            g.organization if inside else None,
            g.fully_reversed if inside else None,
            g.amount_cents if installment_inside else None,
            g.reversed_cents if installment_inside else None,
        )
        groups.setdefault(key, []).append(g)
    merged = [
        replace(
            members[0],
            gift_id=None,
            count=len(members),
            amount_cents=sum(m.amount_cents for m in members),
            reversed_cents=sum(m.reversed_cents for m in members),
            first_at=min(m.first_at for m in members if m.first_at),
        )
        for members in groups.values()
    ]
    return DonorFacts(merged, facts.increases)


def by_reason(result) -> Counter[str]:
    counts: Counter[str] = Counter()
    for g in result.gifts:
        if g.facts.period is IN:
            for reason, count, gross in g.breakdown:
                counts[reason] += count
                counts[f"{reason}$"] += gross
    return counts


@given(donor_facts(), st.randoms(use_true_random=False))
@settings(max_examples=600)
def test_groups_of_gifts_give_the_same_numbers_as_the_gifts_one_by_one(case, rng) -> None:
    rules, facts = case
    groups = grouped(facts)
    # The database returns groups in no particular order within a donor.
    shuffled = DonorFacts(rng.sample(list(groups.gifts), len(groups.gifts)), groups.increases)
    one_by_one, in_groups = evaluate(rules, facts), evaluate(rules, shuffled)
    assert in_groups.counted_cents == one_by_one.counted_cents
    assert in_groups.matchable_cents == one_by_one.matchable_cents
    assert (in_groups.gifts_in_window, in_groups.gross_cents, in_groups.reversed_cents) == (
        one_by_one.gifts_in_window,
        one_by_one.gross_cents,
        one_by_one.reversed_cents,
    )
    assert (in_groups.new_donor, in_groups.new_recurring) == (one_by_one.new_donor, one_by_one.new_recurring)
    assert in_groups.exclusion_reasons == one_by_one.exclusion_reasons
    assert by_reason(in_groups) == by_reason(one_by_one)


TIES = [
    ("same membership, same instant, different amounts", [{"amount": 101}, {"amount": 100}]),
    ("same membership, same instant, one for an organization", [{"organization": True}, {}]),
    ("same membership, same instant, one refunded", [{"reversed_": 2_500}, {}]),
]


@pytest.mark.parametrize(("name", "variants"), TIES, ids=[t[0] for t in TIES])
def test_installments_paid_at_the_same_instant_count_the_same_in_any_order(name, variants) -> None:
    """Found by the database property test: rows of one donor come back in no fixed order."""
    rules = program(recurring_rule=X12, individuals_only=True)
    gifts = [
        installment(variant.get("amount", 2_500), 7, 40, **{k: v for k, v in variant.items() if k != "amount"})
        for variant in variants
    ]
    expected = evaluate(rules, DonorFacts(gifts)).counted_cents
    groups = list(grouped(DonorFacts(gifts)).gifts)
    for order in (groups, groups[::-1]):
        assert evaluate(rules, DonorFacts(order)).counted_cents == expected
    assert evaluate(rules, DonorFacts(gifts[::-1])).counted_cents == expected
