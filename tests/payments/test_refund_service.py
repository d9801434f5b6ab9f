"""Staff-initiated refunds: through the gateway with an idempotency key, audited, and recorded
in the ledger only from the events Stripe sends back."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.accounts.service import create_staff_user
from donations.extensions import db
from donations.ledger.models import Gift, GiftSource, GiftStatus, Reversal
from donations.payments.models import RefundRequest
from donations.payments.refunds import RefundError, request_refund
from tests import stripe_events as se
from tests.factories import make_donor, make_fund, make_gift
from tests.http_recorder import Answer, HTTPRecorder, RecordedRequest, stripe_error
from tests.payments import support as me

REFUNDS = "/v1/refunds"


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


@pytest.fixture
def finance(app):
    user = create_staff_user("fran@newsroom.example", "finance", "a long enough password")
    db.session.commit()
    return user


@pytest.fixture
def stripe_api(app, monkeypatch) -> Iterator[HTTPRecorder]:
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_refunds")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        monkeypatch.setitem(app.config, "STRIPE_TIMEOUT_SECONDS", 2)
        yield api


def paid_gift(fund, amount: int = 8_000) -> Gift:
    return make_gift(make_donor(), fund, amount, stripe_payment_intent_id=se.unique("pi"))


def refund_answer(refund_id: str, amount: int, payment_intent: str) -> Answer:
    return Answer(json=me.refund(refund_id=refund_id, amount=amount, payment_intent=payment_intent))


def reversal_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Reversal))


def test_refund_sends_amount_reason_and_key_and_the_reversal_comes_once_from_the_events(
    client, webhook_secret, fund, finance, stripe_api
):
    gift = paid_gift(fund)
    stripe_api.route("POST", REFUNDS, refund_answer("re_test_staff1", 2_500, gift.stripe_payment_intent_id))

    refund_id = request_refund(gift.id, 2_500, "Donor gave twice by mistake", finance, remote_addr="203.0.113.7")

    assert refund_id == "re_test_staff1"
    [sent] = stripe_api.requests_to("POST", REFUNDS)
    assert sent.headers["Idempotency-Key"] == f"{se.TEST_INSTALLATION_ID}-refund-gift-{gift.id}-1"
    assert sent.headers["Authorization"] == "Bearer sk_test_refunds"
    assert sent.form["amount"] == "2500"
    assert sent.form["payment_intent"] == gift.stripe_payment_intent_id
    assert sent.form["reason"] == "requested_by_customer"
    assert sent.form["metadata[reason]"] == "Donor gave twice by mistake"
    assert sent.form["metadata[gift_id]"] == str(gift.id)
    # Nothing in the ledger until Stripe's events say so.
    assert reversal_count() == 0
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "gift.refund_requested")).one()
    assert (audit.staff_user_id, audit.target_id, audit.remote_addr) == (finance.id, str(gift.id), "203.0.113.7")
    assert audit.details["amount_cents"] == 2_500 and audit.details["reason"] == "Donor gave twice by mistake"

    refund = me.refund(
        refund_id=refund_id,
        amount=2_500,
        payment_intent=gift.stripe_payment_intent_id,
        metadata={"gift_id": str(gift.id), "reason": "Donor gave twice by mistake"},
    )
    charge = me.charge(amount=8_000, payment_intent=gift.stripe_payment_intent_id, refunds=[refund])
    for payload in [se.event("refund.created", refund), se.event("charge.refunded", charge)] * 2:
        assert se.post_event(client, payload, webhook_secret).status_code == 200

    db.session.expire_all()
    (reversal,) = db.session.scalars(select(Reversal)).all()
    assert (reversal.gift_id, reversal.amount_cents, reversal.stripe_key) == (gift.id, 2_500, "refund:re_test_staff1")
    assert reversal.reason == "Donor gave twice by mistake"
    assert db.session.get(Gift, gift.id).status == GiftStatus.PARTIALLY_REFUNDED
    assert db.session.scalars(select(RefundRequest.stripe_refund_id)).all() == ["re_test_staff1"]

    # A second refund is a new request with a new key, for what is left by default.
    stripe_api.route("POST", REFUNDS, refund_answer("re_test_staff2", 5_500, gift.stripe_payment_intent_id))
    request_refund(gift.id, None, "Closing the account", finance)
    second = stripe_api.requests_to("POST", REFUNDS)[-1]
    assert second.headers["Idempotency-Key"] == f"{se.TEST_INSTALLATION_ID}-refund-gift-{gift.id}-2"
    assert second.form["amount"] == "5500"


def test_unanswered_refund_is_retried_with_the_same_key(fund, finance, stripe_api):
    gift = paid_gift(fund, 3_000)
    # The client retries a 500 once itself; the staff member's second attempt gets through.
    stripe_api.route(
        "POST",
        REFUNDS,
        [
            Answer(status=500, json=stripe_error("try again")),
            Answer(status=500, json=stripe_error("try again")),
            refund_answer("re_test_retry", 3_000, gift.stripe_payment_intent_id),
        ],
    )
    with pytest.raises(RefundError, match="retries the same refund"):
        request_refund(gift.id, None, "Requested by donor", finance)
    assert request_refund(gift.id, None, "Requested by donor", finance) == "re_test_retry"
    keys = {r.headers["Idempotency-Key"] for r in stripe_api.requests_to("POST", REFUNDS)}
    assert (
        keys == {f"{se.TEST_INSTALLATION_ID}-refund-gift-{gift.id}-1"}
        and len(stripe_api.requests_to("POST", REFUNDS)) == 3
    )
    assert db.session.scalar(select(func.count()).select_from(RefundRequest)) == 1


def test_refused_refund_spends_its_key_and_records_nothing(fund, finance, stripe_api):
    gift = paid_gift(fund, 3_000)
    stripe_api.route(
        "POST",
        REFUNDS,
        Answer(
            status=400,
            json=stripe_error("Charge has already been refunded.", "invalid_request_error", "charge_already_refunded"),
        ),
    )
    with pytest.raises(RefundError, match="already been refunded"):
        request_refund(gift.id, 1_000, "Requested by donor", finance)
    request = db.session.scalars(select(RefundRequest)).one()
    assert request.refused_at is not None and request.stripe_refund_id is None
    with pytest.raises(RefundError):
        request_refund(gift.id, 1_000, "Requested by donor", finance)
    keys = [r.headers["Idempotency-Key"] for r in stripe_api.requests_to("POST", REFUNDS)]
    assert keys == [
        f"{se.TEST_INSTALLATION_ID}-refund-gift-{gift.id}-1",
        f"{se.TEST_INSTALLATION_ID}-refund-gift-{gift.id}-2",
    ]
    assert reversal_count() == 0


@pytest.mark.parametrize(
    ("amount", "reason", "message"),
    [(9_000, "too much", r"at most \$80\.00"), (0, "nothing", "more than 0"), (500, "   ", "give a reason")],
)
def test_bad_refund_requests_are_refused_before_stripe(fund, finance, stripe_api, amount, reason, message):
    gift = paid_gift(fund, 8_000)
    with pytest.raises(RefundError, match=message):
        request_refund(gift.id, amount, reason, finance)
    assert stripe_api.requests == []
    assert db.session.scalar(select(func.count()).select_from(RefundRequest)) == 0


def test_checks_and_unknown_gifts_cannot_be_refunded_through_stripe(fund, finance, stripe_api):
    check = make_gift(make_donor(), fund, 5_000, source=GiftSource.CHECK, check_number="1042")
    with pytest.raises(RefundError, match="not paid through Stripe"):
        request_refund(check.id, None, "Bounced", finance)
    with pytest.raises(RefundError, match="no gift"):
        request_refund(check.id + 1000, None, "Typo", finance)
    assert stripe_api.requests == []


def test_local_gateway_refund_runs_through_the_webhook_once(client, fund, finance):
    # The local gateway delivers refund.created and charge.refunded: one reversal from the two.
    gift = paid_gift(fund, 4_000)
    first = request_refund(gift.id, 1_000, "Requested by donor", finance)
    assert first.startswith("re_local_")
    db.session.expire_all()
    assert [(r.kind, r.amount_cents, r.stripe_key) for r in db.session.scalars(select(Reversal))] == [
        ("refund", 1_000, f"refund:{first}")
    ]
    assert db.session.get(Gift, gift.id).status == GiftStatus.PARTIALLY_REFUNDED


def test_cli_refund(app, fund):
    gift = paid_gift(fund, 4_000)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["payments", "refund", str(gift.id), "--amount", "1500", "--reason", "Duplicate gift"])
    assert result.exit_code == 0, result.output
    assert f"requested for gift {gift.id}" in result.output
    db.session.expire_all()
    assert db.session.scalars(select(Reversal.amount_cents)).all() == [1_500]
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "gift.refund_requested")).one()
    assert audit.actor.startswith("cli:")

    refused = runner.invoke(args=["payments", "refund", str(gift.id), "--amount", "9000", "--reason", "Too much"])
    assert refused.exit_code == 1 and "at most $25.00" in refused.output
    missing_reason = runner.invoke(args=["payments", "refund", str(gift.id)])
    assert missing_reason.exit_code == 2 and "--reason" in missing_reason.output


def refund_for_what_was_asked(request: RecordedRequest) -> Answer:
    """Stripe's answer to any refund request: a new refund of the amount asked, a moment later."""
    return Answer(
        json=me.refund(amount=int(request.form["amount"]), payment_intent=request.form["payment_intent"]),
        delay=0.1,
    )


def asked_of_stripe(api: HTTPRecorder) -> list[int]:
    return [int(r.form["amount"]) for r in api.requests_to("POST", REFUNDS)]


def test_refunds_not_yet_confirmed_count_against_what_is_left(client, webhook_secret, fund, finance, stripe_api):
    """Issue 13, finding 9: two refunds of $6.00 on a $10.00 gift both reached Stripe, because
    the first is in the ledger only once Stripe's event arrives."""
    gift = paid_gift(fund, 1_000)
    stripe_api.route("POST", REFUNDS, refund_for_what_was_asked)
    first = request_refund(gift.id, 600, "Requested by donor", finance)
    with pytest.raises(RefundError, match=r"at most \$4\.00, what is left of it \(\$6\.00 already asked of Stripe"):
        request_refund(gift.id, 600, "Requested by donor", finance)
    assert asked_of_stripe(stripe_api) == [600]
    # What is left is asked for, and then nothing more, not even "everything".
    request_refund(gift.id, None, "The rest", finance)
    with pytest.raises(RefundError, match="take all that is left"):
        request_refund(gift.id, None, "The rest", finance)
    assert asked_of_stripe(stripe_api) == [600, 400]

    # Once Stripe confirms the first, it counts through the ledger, once, not twice.
    refund = me.refund(refund_id=first, amount=600, payment_intent=gift.stripe_payment_intent_id)
    assert se.post_event(client, se.event("refund.created", refund), webhook_secret).status_code == 200
    with pytest.raises(RefundError, match=r"at most \$0\.00"):
        request_refund(gift.id, 1, "One cent more", finance)
    assert asked_of_stripe(stripe_api) == [600, 400]


def test_a_refund_stripe_refused_or_that_failed_frees_its_amount(client, webhook_secret, fund, finance, stripe_api):
    gift = paid_gift(fund, 1_000)
    stripe_api.route(
        "POST",
        REFUNDS,
        [
            Answer(status=400, json=stripe_error("Refunds are paused.", "invalid_request_error")),
            refund_answer("re_test_fails", 600, gift.stripe_payment_intent_id),
            refund_answer("re_test_after", 1_000, gift.stripe_payment_intent_id),
        ],
    )
    with pytest.raises(RefundError, match="paused"):
        request_refund(gift.id, 600, "Requested by donor", finance)
    assert request_refund(gift.id, 600, "Requested by donor", finance) == "re_test_fails"
    failed = me.refund(
        refund_id="re_test_fails", amount=600, payment_intent=gift.stripe_payment_intent_id, status="failed"
    )
    assert se.post_event(client, se.event("refund.created", failed), webhook_secret).status_code == 200
    assert request_refund(gift.id, None, "Again, all of it", finance) == "re_test_after"
    assert asked_of_stripe(stripe_api) == [600, 600, 1_000]


def _concurrent_refunds(app, gift_id: int, amounts: list[int]) -> list[Exception | str]:
    """Each amount asked for at the same moment, from its own app context (session, connection)."""
    start = threading.Barrier(len(amounts))
    outcomes: list[Exception | str] = [RuntimeError("did not run")] * len(amounts)

    def ask(index: int, amount: int) -> None:
        with app.app_context():
            try:
                start.wait()
                outcomes[index] = request_refund(gift_id, amount, "Requested by donor", "cli:test")
            except Exception as exc:
                outcomes[index] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ask, args=(i, amount)) for i, amount in enumerate(amounts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.postgresql_only
@pytest.mark.parametrize(
    ("gift_cents", "amounts"),
    [(1_000, [600, 600]), (1_002, [400, 550, 600, 700, 800])],
)
def test_concurrent_refunds_never_ask_stripe_for_more_than_the_gift(
    app, fund, finance, stripe_api, gift_cents, amounts
):
    """Issue 13, finding 9: five concurrent refunds of $4-8 on a $10.02 gift made five Stripe
    calls totalling $30.00. Under the gift's row lock each request sees the others' amounts."""
    gift = paid_gift(fund, gift_cents)
    stripe_api.route("POST", REFUNDS, refund_for_what_was_asked)
    outcomes = _concurrent_refunds(app, gift.id, amounts)
    asked = asked_of_stripe(stripe_api)
    assert sum(asked) <= gift_cents, asked
    made = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if not isinstance(o, str)]
    assert len(made) == len(asked) >= 1
    assert all(isinstance(o, RefundError) and "at most" in str(o) for o in refused), refused
    db.session.expire_all()
    requests = db.session.scalars(select(RefundRequest)).all()
    assert sorted(r.amount_cents for r in requests) == sorted(asked)


def test_a_renewal_without_its_invoice_payment_event_is_refunded_through_the_invoices_payments(
    fund, finance, stripe_api
):
    """invoice_payment.paid has not come: the refund finds the PaymentIntent through the
    invoice's payments, and links it as that event would."""
    invoice_id, intent = se.unique("in"), se.unique("pi")
    gift = make_gift(make_donor(), fund, 1_500, stripe_invoice_id=invoice_id)
    paid = se.invoice_payment(invoice_id=invoice_id, amount_cents=1_500, payment_intent=intent)
    stripe_api.route("GET", "/v1/invoice_payments", json=me.page([paid], has_more=False, url="/v1/invoice_payments"))
    stripe_api.route("POST", REFUNDS, refund_answer("re_test_renewal", 1_500, intent))

    assert request_refund(gift.id, None, "Charged after cancelling", finance) == "re_test_renewal"
    [asked] = stripe_api.requests_to("GET", "/v1/invoice_payments")
    assert (asked.query["invoice"], asked.query["status"]) == (invoice_id, "paid")
    [sent] = stripe_api.requests_to("POST", REFUNDS)
    assert sent.form["payment_intent"] == intent
    assert db.session.get(Gift, gift.id, populate_existing=True).stripe_payment_intent_id == intent


def test_a_renewal_stripe_names_no_payment_for_is_refused_in_words(fund, finance, stripe_api):
    gift = make_gift(make_donor(), fund, 1_500, stripe_invoice_id="in_unpaid")
    stripe_api.route("GET", "/v1/invoice_payments", json=me.page([], has_more=False, url="/v1/invoice_payments"))
    with pytest.raises(RefundError, match="names no paid payment for invoice in_unpaid"):
        request_refund(gift.id, None, "Charged after cancelling", finance)
    assert stripe_api.requests_to("POST", REFUNDS) == []
    assert db.session.scalar(select(func.count()).select_from(RefundRequest)) == 0
