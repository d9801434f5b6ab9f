"""A living demo newsroom for development: `flask --app wsgi demo seed` (run by `make run`).

About eighteen months of a small newsroom's giving, written through the ledger's own functions
(the ledger is the only writer of donors, gifts, reversals and memberships), so every page and
report shows numbers at once: one-time gifts online with a year-end rush, monthly and annual
members (renewals, increases, cancellations, one past due, one paused), refunds, a lost and a
won dispute, mailed checks, organizations and anonymous donors, three funds (one held by a fiscal
sponsor, with the gifts it reported), weekly payouts, and NewsMatch and Report for America
programs, NewsMatch's window holding real gifts.

Deterministic: the same day gives the same data (a seeded random generator; dates count back
from now). Never run twice over: a seeded database is left as it is. Never in production.
Callers own the transaction: nothing here commits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select

from donations.clock import local_date, utcnow
from donations.demo.people import (
    ANNUAL_AMOUNTS,
    CITIES,
    FIRST,
    LAST,
    MONTHLY_AMOUNTS,
    ONE_TIME_AMOUNTS,
    ORGANIZATIONS,
    TRIBUTES,
)
from donations.extensions import Base, db
from donations.grants import presets
from donations.grants import service as grants
from donations.ledger import funds as fund_ledger
from donations.ledger import installments, memberships, offline, reversals, settlement
from donations.ledger import service as ledger
from donations.ledger.currency import newsroom_currency
from donations.ledger.models import Frequency, Fund, Gift, GiftSource, MembershipStatus
from donations.payments import reconcile
from donations.payments.models import Installation, Payout

SEED = 20_24
DAYS = 548  # about eighteen months
MARKER_SESSION = "cs_demo_00001"  # the first demo checkout: its gift says the demo is seeded


@dataclass
class DemoSummary:
    donors: int = 0
    one_time: int = 0
    installments: int = 0
    members: int = 0
    paused: int = 0
    checks: int = 0
    sponsor_gifts: int = 0
    refunds: int = 0
    disputes: int = 0
    payouts: int = 0


def is_seeded() -> bool:
    return db.session.scalar(select(Gift.id).where(Gift.stripe_checkout_session_id == MARKER_SESSION)) is not None


def wipe() -> None:
    """Every row of every table, children first (`demo seed --reset`; never in production), but
    the installation id: the database's identity, which a running app keeps and Stripe objects
    made from this database carry."""
    for table in reversed(Base.metadata.sorted_tables):
        if table is not Installation.__table__:
            db.session.execute(delete(table))


def stripe_fee(amount_cents: int) -> int:
    return round(amount_cents * 0.029) + 30


class _Demo:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.currency = newsroom_currency()
        self.start = now - timedelta(days=DAYS)
        self.rng = random.Random(SEED)
        self.summary = DemoSummary()
        self.sessions = 0
        self.people: list[tuple[str, str, str]] = []  # (email, name, postal code)
        self.stripe_gifts: list[Gift] = []
        cities = [CITIES[n % len(CITIES)] for n in range(len(FIRST) * 4)]
        for n in range(len(FIRST) * 4):
            first, last = FIRST[n % len(FIRST)], LAST[(n * 7) % len(LAST)]
            email = f"{first.lower()}.{last.lower()}{n}@example.org"
            self.people.append((email, f"{first} {last}", cities[n][2]))

    # --- Times ---------------------------------------------------------------------------------

    def moment(self, day: int, minutes: int | None = None) -> datetime:
        """`day` days after the start, at a daytime minute; never later than a minute ago."""
        minutes = self.rng.randrange(15 * 60, 27 * 60) if minutes is None else minutes  # 7am-7pm Pacific
        return min(self.start + timedelta(days=day, minutes=minutes), self.now - timedelta(minutes=1))

    # --- Funds and the program -----------------------------------------------------------------

    def funds(self) -> tuple[Fund, Fund]:
        general = db.session.scalar(select(Fund).where(Fund.slug == "community-forums"))
        if general is None:
            general = fund_ledger.create_fund(
                slug="community-forums",
                name="Community Forums Reporting",
                description="Pays for our reporters to hold and cover open community forums in every neighborhood.",
                goal_cents=2_500_000,
                suggested_amounts={
                    "one_time": [2500, 5000, 10000, 25000],
                    "monthly": [500, 1000, 2500],
                    "annual": [6000, 12000, 25000],
                },
                is_default=True,
                show_progress=True,
            )
        investigations = db.session.scalar(select(Fund).where(Fund.slug == "investigations"))
        if investigations is None:
            investigations = fund_ledger.create_fund(
                slug="investigations",
                name="Investigative Reporting Fund",
                description="Months-long investigations into housing, schools and city contracts.",
                goal_cents=5_000_000,
                suggested_amounts={"one_time": [5000, 10000, 25000, 50000]},
                is_default=False,
                show_progress=True,
            )
        return general, investigations

    def program(self, general: Fund) -> None:
        """Two programs from the presets, so their reports can be checked by hand against the
        presets' published rules: NewsMatch (Nov 1 - Dec 31) and Report for America (its June -
        May program year, the local share of a $50,000 salary in the corps member's first year)."""
        today = local_date(self.now)
        year = today.year if today.month >= 11 else today.year - 1
        newsmatch = presets.preset(
            "newsmatch", name=f"NewsMatch {year}", slug=f"newsmatch-{year}", first_day=date(year, 11, 1)
        )
        grants.create_program(replace(newsmatch, goal_cents=2_500_000, public_fund_id=general.id), actor="cli:demo")
        june = today.year if today.month >= 6 else today.year - 1
        rfa = presets.preset(
            "rfa",
            name=f"Report for America {june}-{june + 1}",
            slug=f"rfa-{june}",
            first_day=date(june, 6, 1),
            salary_cents=5_000_000,
            corps_year=1,
        )
        grants.create_program(rfa, actor="cli:demo")

    # --- One-time gifts ------------------------------------------------------------------------

    def online_gift(self, person: int, fund: Fund, at: datetime, amount: int, **extra: object) -> Gift:
        email, name, postal = self.people[person]
        self.sessions += 1
        session_id = f"cs_demo_{self.sessions:05d}"
        donor = ledger.find_or_create_donor(email, name=name, postal_code=postal)
        covered = stripe_fee(amount) if extra.get("cover_fee") else 0
        details = ledger.GiftDetails(
            amount_cents=amount + covered,
            fee_covered_cents=covered,
            frequency=Frequency.ONE_TIME,
            organization=extra.get("organization"),  # type: ignore[arg-type]
            anonymous=bool(extra.get("anonymous")),
            tribute_kind=extra.get("tribute_kind"),  # type: ignore[arg-type]
            tribute_name=extra.get("tribute_name"),  # type: ignore[arg-type]
            attribution={"channel": "demo", "utm_source": self.rng.choice(("newsletter", "site", "social"))},
        )
        gift = ledger.start_gift(donor, fund, details)
        ledger.attach_checkout_session(gift, session_id)
        ledger.record_checkout_payment(
            ledger.CheckoutPayment(
                session_id=session_id,
                amount_cents=amount + covered,
                currency=self.currency,
                paid_at=at,
                email=email,
                name=name,
                postal_code=postal,
                business_name=None,
                payment_intent_id=f"pi_demo_{self.sessions:05d}",
                customer_id=None,
                gift_id=gift.id,
                fund_slug=fund.slug,
            )
        )
        ledger.record_card(
            charge_id=f"ch_demo_{self.sessions:05d}",
            payment_intent_id=gift.stripe_payment_intent_id,
            gift_id=gift.id,
            last4=f"{4242 + person % 50:04d}",
        )
        fee = stripe_fee(gift.amount_cents)
        settlement.record_fee(gift, fee_cents=fee, net_cents=gift.amount_cents - fee)
        self.stripe_gifts.append(gift)
        self.summary.one_time += 1
        return gift

    def one_time_gifts(self, general: Fund, investigations: Fund) -> None:
        rng = self.rng
        for day in range(DAYS):
            at = self.start + timedelta(days=day)
            rush = local_date(at).month == 12 or (local_date(at).month == 11 and local_date(at).day > 20)
            for _ in range(rng.choice((0, 0, 1, 1, 2)) + (2 if rush else 0)):
                person = rng.randrange(len(self.people))
                extra: dict[str, object] = {}
                roll = rng.random()
                if roll < 0.06:
                    extra["anonymous"] = True
                elif roll < 0.12:
                    extra["organization"] = rng.choice(ORGANIZATIONS)
                elif roll < 0.15:
                    extra.update(tribute_kind=rng.choice(("honor", "memory")), tribute_name=rng.choice(TRIBUTES))
                extra["cover_fee"] = rng.random() < 0.3
                fund = investigations if rng.random() < 0.3 else general
                self.online_gift(person, fund, self.moment(day), rng.choice(ONE_TIME_AMOUNTS), **extra)
        # Today's gifts, so "Today" on the dashboard is not empty.
        today = local_date(self.now)
        for minutes_ago in (12, 47, 95):
            at = self.now - timedelta(minutes=minutes_ago)
            if local_date(at) == today:
                self.online_gift(rng.randrange(len(self.people)), general, at, rng.choice(ONE_TIME_AMOUNTS))

    # --- Members -------------------------------------------------------------------------------

    def members(self, general: Fund, investigations: Fund) -> None:
        rng = self.rng
        plans = [("month", MONTHLY_AMOUNTS, 30)] * 40 + [("year", ANNUAL_AMOUNTS, 365)] * 12
        for number, (interval, amounts, days) in enumerate(plans, start=1):
            person = (number * 5) % len(self.people)
            email, name, postal = self.people[person]
            started = self.moment(rng.randrange(0, DAYS - 20))
            amount = rng.choice(amounts)
            fund = investigations if number % 6 == 0 else general
            subscription = f"sub_demo_{number:03d}"
            fate = rng.random()
            cancel_after = rng.randrange(2, 10) if fate < 0.2 and interval == "month" else None
            increase_after = rng.randrange(2, 8) if 0.2 <= fate < 0.4 else None
            past_due = number == 7

            def origin(at: datetime, amount_cents: int) -> memberships.MembershipOrigin:
                return memberships.MembershipOrigin(
                    subscription_id=subscription,  # noqa: B023 - used within this iteration only
                    as_of=at,
                    customer_id=f"cus_demo_{person:03d}",  # noqa: B023
                    email=email,  # noqa: B023
                    name=name,  # noqa: B023
                    postal_code=postal,  # noqa: B023
                    amount_cents=amount_cents,
                    interval=interval,  # noqa: B023
                    fund_slug=fund.slug,  # noqa: B023
                    started_at=started,  # noqa: B023
                )

            paid_at, count = started, 0
            while paid_at < self.now:
                if past_due and paid_at + timedelta(days=days) >= self.now:
                    memberships.record_failed_payment(origin(paid_at, amount), f"in_demo_{number:03d}_{count:03d}")
                    break
                period_end = paid_at + timedelta(days=days)
                news = installments.record_installment(
                    origin(paid_at, amount),
                    installments.InstallmentPayment(
                        invoice_id=f"in_demo_{number:03d}_{count:03d}",
                        amount_cents=amount,
                        currency=self.currency,
                        paid_at=paid_at,
                        first=count == 0,
                        period_end=period_end,
                        payment_intent_id=f"pi_demo_{number:03d}_{count:03d}",
                    ),
                )
                if news.gift_id is not None:
                    gift = db.session.get(Gift, news.gift_id)
                    assert gift is not None
                    settlement.record_fee(gift, fee_cents=stripe_fee(amount), net_cents=amount - stripe_fee(amount))
                    self.summary.installments += 1
                count += 1
                if increase_after is not None and count == increase_after:
                    changed_at = paid_at + timedelta(days=3)
                    if changed_at < self.now:
                        new_amount = amount * 2
                        self.subscription_changed(
                            origin(changed_at, new_amount),
                            f"evt_demo_{number:03d}_increase",
                            period_end,
                            previous_amount_cents=amount,
                        )
                        amount = new_amount
                if cancel_after is not None and count == cancel_after:
                    ended = min(period_end, self.now - timedelta(hours=1))
                    self.subscription_changed(
                        origin(ended, amount),
                        f"evt_demo_{number:03d}_canceled",
                        period_end,
                        status=MembershipStatus.CANCELED,
                        ended_at=ended,
                    )
                    break
                paid_at = period_end
            still_paying = paid_at >= self.now  # not canceled, not past due
            if interval == "month" and still_paying and not self.summary.paused:
                # One member paused their monthly gift for two months (Stripe's pause_collection).
                self.subscription_changed(
                    origin(self.now - timedelta(days=2), amount),
                    f"evt_demo_{number:03d}_paused",
                    paid_at,
                    paused_until=paid_at + timedelta(days=60),
                )
                self.summary.paused += 1
            self.summary.members += 1

    def subscription_changed(
        self,
        origin: memberships.MembershipOrigin,
        event_id: str,
        period_end: datetime,
        *,
        status: str = MembershipStatus.ACTIVE,
        ended_at: datetime | None = None,
        previous_amount_cents: int | None = None,
        paused_until: datetime | None = None,
    ) -> None:
        """A customer.subscription.updated or .deleted event's news: an increase, a cancellation, a pause."""
        memberships.apply_subscription(
            memberships.SubscriptionState(
                origin=origin,
                event_id=event_id,
                status=status,
                cancel_at_period_end=False,
                current_period_end=period_end,
                ended_at=ended_at,
                previous_amount_cents=previous_amount_cents,
                pause_known=paused_until is not None,
                paused_until=paused_until,
            )
        )

    # --- Checks --------------------------------------------------------------------------------

    def checks(self, general: Fund, investigations: Fund) -> None:
        rng = self.rng
        for number in range(1, 31):
            received = local_date(self.moment(rng.randrange(5, DAYS)))
            person = (number * 11) % len(self.people)
            email, name, postal = self.people[person]
            city, region, _ = CITIES[person % len(CITIES)]
            organization = ORGANIZATIONS[number % len(ORGANIZATIONS)] if number % 4 == 0 else None
            offline.record_offline_gift(
                offline.OfflineGift(
                    donor=offline.DonorDetails(
                        email=None if number % 5 == 0 else email,
                        name=name,
                        address_line1=f"{100 + number * 13} {rng.choice(('Oak', 'Pine', 'Lake', 'Grand'))} Ave",
                        city=city,
                        region=region,
                        postal_code=postal,
                    ),
                    fund_id=(investigations if number % 3 == 0 else general).id,
                    amount_cents=rng.choice((2500, 5000, 10000, 20000, 50000, 100000)),
                    source=GiftSource.CHECK,
                    received_on=received,
                    check_number=str(1000 + number * 17),
                    postmarked_on=received - timedelta(days=rng.randrange(1, 5)),
                    organization=organization,
                    memo="Mailed check (demo)",
                    send_receipt=False,
                )
            )
            self.summary.checks += 1

    # --- A fund held by a fiscal sponsor -------------------------------------------------------

    def sponsor_held_fund(self) -> None:
        """A fund a community foundation holds for the newsroom, with the gifts the foundation
        reported (tax deductible, through it): recorded by staff, as from its quarterly report."""
        fund = fund_ledger.create_fund(
            slug="schools-coverage",
            name="Schools Coverage Fund",
            description="Held by the Valley Community Foundation: pays for a reporter on the schools beat.",
            goal_cents=3_000_000,
            sponsor=fund_ledger.Sponsor("Valley Community Foundation", "12-3456789"),
        )
        rng = self.rng
        for number in range(1, 9):
            person = (number * 13 + 3) % len(self.people)
            email, name, postal = self.people[person]
            offline.record_offline_gift(
                offline.OfflineGift(
                    donor=offline.DonorDetails(email=email, name=name, postal_code=postal),
                    fund_id=fund.id,
                    amount_cents=rng.choice((10000, 25000, 50000, 100000)),
                    source=GiftSource.SPONSOR,
                    received_on=local_date(self.moment(rng.randrange(30, DAYS))),
                    memo="Reported by the Valley Community Foundation (demo)",
                    send_receipt=False,
                )
            )
            self.summary.sponsor_gifts += 1

    # --- Refunds and disputes ------------------------------------------------------------------

    def refunds_and_disputes(self) -> None:
        gifts = self.stripe_gifts
        for number, index in enumerate(range(40, len(gifts) - 40, max(1, (len(gifts) - 80) // 6)), start=1):
            gift = gifts[index]
            partial = number % 2 == 0
            at = (gift.received_at or self.now) + timedelta(days=2)
            reversals.apply_refund(
                reversals.RefundFacts(
                    refund_id=f"re_demo_{number:03d}",
                    amount_cents=gift.amount_cents // 2 if partial else gift.amount_cents,
                    currency=self.currency,
                    status="succeeded",
                    created_at=at,
                    observed_at=at,
                    charge_id=None,
                    payment_intent_id=gift.stripe_payment_intent_id,
                    reason="requested_by_customer" if partial else "duplicate",
                )
            )
            self.summary.refunds += 1
        for number, (index, outcome) in enumerate(((len(gifts) // 3, "lost"), (len(gifts) // 2, "won")), start=1):
            gift = gifts[index]
            opened = (gift.received_at or self.now) + timedelta(days=20)
            facts = reversals.DisputeFacts(
                dispute_id=f"du_demo_{number:03d}",
                amount_cents=gift.amount_cents,
                currency=self.currency,
                status="needs_response",
                reason="fraudulent" if outcome == "lost" else "product_not_received",
                evidence_due_by=opened + timedelta(days=14),
                created_at=opened,
                observed_at=opened,
                charge_id=None,
                payment_intent_id=gift.stripe_payment_intent_id,
            )
            reversals.open_dispute(facts)
            closed = opened + timedelta(days=40)
            reversals.close_dispute(
                reversals.DisputeFacts(**{**facts.__dict__, "status": outcome, "observed_at": closed})
            )
            self.summary.disputes += 1

    # --- Payouts -------------------------------------------------------------------------------

    def payouts(self) -> None:
        """A payout each Monday for the last ten weeks, settling the week's online gifts."""
        weeks = 10
        for week in range(weeks, 0, -1):
            paid = self.now - timedelta(days=7 * week)
            gifts = [g for g in self.stripe_gifts if g.received_at and paid - timedelta(days=7) <= g.received_at < paid]
            payout_id = f"po_demo_{week:03d}"
            total = sum(g.amount_cents - stripe_fee(g.amount_cents) for g in gifts)
            if not gifts:
                continue
            stamp = int(paid.timestamp())
            payout = reconcile.record_payout(
                {
                    "id": payout_id,
                    "created": stamp,
                    "amount": total,
                    "currency": self.currency,
                    "status": "paid",
                    "arrival_date": stamp + 2 * 86400,
                }
            )
            for gift in gifts:
                fee = stripe_fee(gift.amount_cents)
                reconcile.record_transaction(
                    payout,
                    {
                        "id": f"txn_demo_{gift.id:06d}",
                        "type": "charge",
                        "reporting_category": "charge",
                        "source": {"id": gift.stripe_charge_id, "payment_intent": gift.stripe_payment_intent_id},
                        "amount": gift.amount_cents,
                        "fee": fee,
                        "net": gift.amount_cents - fee,
                        "currency": self.currency,
                        "created": int(gift.received_at.timestamp()) if gift.received_at else stamp,
                    },
                )
            db.session.get(Payout, payout_id).reconciled_at = paid  # type: ignore[union-attr]
            self.summary.payouts += 1


def seed(now: datetime | None = None) -> DemoSummary | None:
    """Write the demo newsroom; None (and nothing written) when it is already there."""
    if is_seeded():
        return None
    demo = _Demo(now or utcnow())
    general, investigations = demo.funds()
    demo.one_time_gifts(general, investigations)
    demo.members(general, investigations)
    demo.checks(general, investigations)
    demo.sponsor_held_fund()
    demo.refunds_and_disputes()
    demo.payouts()
    demo.program(general)
    db.session.flush()
    demo.summary.donors = len({g.donor_id for g in demo.stripe_gifts})
    return demo.summary
