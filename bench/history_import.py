"""`history stripe` against a local stand-in of an account holding N objects (default 100,000):
objects per second recorded, against the stand-in's own floor (the same lists paged through the
same lister, recording nothing), with the importer's peak memory.

    .venv/bin/python bench/history_import.py [--objects 100000] [--database-url URL]

The stand-in runs in a process of its own (so the peak memory is the importer's). Both passes
page without the rate-limit pacing (what is measured is the app, not Stripe's limit: at 90
requests a second a live key lists 9,000 objects a second at best). The default database is a
new SQLite file; give a PostgreSQL URL to measure that (its tables are emptied first).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def build_account(total: int):
    """A mix like a newsroom's: gifts through a Payment Link, event tickets, memberships (a
    subscription, 4 paid invoices and their payments each), the paper's subscriptions, a shop's
    PaymentIntents, refunds."""
    from tests import stripe_events as se
    from tests.payments import support as me
    from tests.stripe_account import StripeAccount

    account = StripeAccount()
    start = 1_704_067_200
    per = max(total // 100, 1)  # units of 100 objects
    for n in range(per):
        t = start + n * 600
        gifts = []
        for k in range(30):
            session = se.checkout_session(
                amount_cents=1_000 + k, email=f"donor{(n * 30 + k) % 20_000}@example.org", metadata={}
            )
            session.update(payment_link="plink_gifts" if k < 20 else "plink_tickets", created=t + k)
            gifts.append(session)
        account.add("checkout_sessions", *gifts)
        for m in range(4):
            product = "prod_membership" if m < 3 else "prod_paper"
            sub = se.subscription(amount_cents=1_500, metadata={}, start_date=t, customer=f"cus_{n}_{m}")
            sub["items"]["data"][0]["price"].update(id=f"price_{product}", product=product)
            account.add("subscriptions", sub)
            for i in range(4):
                begin = t + i * 31 * 86_400
                invoice = se.invoice(
                    subscription=sub["id"],
                    amount_cents=1_500 if i < 2 else 2_000,
                    paid_at=begin,
                    period_start=begin,
                    billing_reason="subscription_create" if i == 0 else "subscription_cycle",
                    email=f"member{n}_{m}@example.org",
                    metadata={},
                )
                invoice["lines"]["data"][0]["pricing"]["price_details"] = {
                    "price": f"price_{product}",
                    "product": product,
                }
                invoice["created"] = begin
                account.add("invoices", invoice)
                account.add(
                    "invoice_payments",
                    se.invoice_payment(invoice_id=invoice["id"], payment_intent=se.unique("pi")) | {"created": begin},
                )
        shop = [
            se.stripe_object(
                "payment_intent",
                id=se.unique("pi"),
                amount=1_200,
                amount_received=1_200,
                currency="usd",
                status="succeeded",
                metadata={},
                created=t + k,
                latest_charge=None,
            )
            for k in range(20)
        ]
        account.add("payment_intents", *shop)
        account.add(
            "refunds",
            *[me.refund(amount=100, payment_intent=gifts[k]["payment_intent"], created=t + 300 + k) for k in range(5)],
        )
        account.add(
            "refunds", *[me.refund(amount=1_200, payment_intent=shop[k]["id"], created=t + 400 + k) for k in range(5)]
        )
        account.add("payouts", me.payout(amount=10_000, arrival=t + 2 * 86_400))
    return account


def serve(total: int, queue) -> None:
    from tests.http_recorder import HTTPRecorder

    account = build_account(total)
    count = sum(len(objects) for objects in account.objects.values())
    with HTTPRecorder() as api:
        account.serve(api)
        api.requests = _Forgetful()  # 100,000 objects are a thousand requests: keep none
        queue.put((api.url, count))
        queue.get()  # until told to stop


class _Forgetful(list):
    def append(self, item) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    options = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    to_child, from_child = context.Queue(), context.Queue()
    server = context.Process(target=serve, args=(options.objects, from_child), daemon=True)
    started = time.perf_counter()
    server.start()
    url, count = from_child.get()
    print(f"stand-in: {count} objects, built in {time.perf_counter() - started:.1f} s")

    from flask_migrate import upgrade

    from donations import create_app
    from donations.extensions import db, unit_of_work
    from donations.ledger import funds
    from donations.payments.history.stripe_import import Importer
    from donations.payments.history.stripe_lists import LISTINGS, Lister, Pacer, history_client

    database_url = options.database_url or f"sqlite:///{tempfile.mkdtemp()}/history-bench.sqlite"
    app = create_app(
        "development",
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "STRIPE_SECRET_KEY": "sk_live_bench",
            "STRIPE_WEBHOOK_SECRET": "whsec_bench",
            "STRIPE_API_BASE": url,
        },
    )
    with app.app_context():
        upgrade(directory=str(HERE.parent / "migrations"))
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                if table.name != "alembic_version":
                    connection.execute(table.delete())
        with unit_of_work():
            funds.create_fund(slug="community-forums", name="Community Forums", is_default=True)
        runner = app.test_cli_runner()
        for source in ("plink_gifts", "prod_membership"):
            runner.invoke(args=["payments", "gift-sources", "add", source])

        client = history_client("sk_live_bench", url, 30)
        lister = Lister(client, Pacer(1e9))
        began, cpu = time.perf_counter(), time.process_time()
        floor_objects = sum(
            len(page) for listing in LISTINGS for page in lister.pages(listing, created_gte=None, starting_after=None)
        )
        floor, floor_cpu = time.perf_counter() - began, time.process_time() - cpu

        began, cpu = time.perf_counter(), time.process_time()
        summary = Importer(Lister(client, Pacer(1e9)), None).run()
        took, took_cpu = time.perf_counter() - began, time.process_time() - cpu
    to_child.put("stop")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database: {database_url.split('://')[0]}")
    # CPU seconds are this process's (the stand-in's own are not counted): steadier than the
    # wall clock on a machine shared with other work.
    print("| pass | objects | seconds | objects/s | CPU seconds (this process) |\n|---|---:|---:|---:|---:|")
    print(
        f"| listing only (the stand-in's floor) | {floor_objects} | {floor:.1f} | {floor_objects / floor:,.0f} "
        f"| {floor_cpu:.1f} |"
    )
    listed = sum(summary.listed.values())
    print(f"| history stripe (recording) | {listed} | {took:.1f} | {listed / took:,.0f} | {took_cpu:.1f} |")
    print(f"recording / floor: {(listed / took) / (floor_objects / floor):.3f} (objects per second)")
    print(f"importer's peak memory (max RSS, this process): {peak_mb:.0f} MB")
    print(f"recorded: {dict(summary.recorded)}")
    print(f"not gifts: {dict(summary.not_gifts)}; already: {summary.already}; waiting: {dict(summary.waiting)}")


if __name__ == "__main__":
    if "--profile" in sys.argv:
        sys.argv.remove("--profile")
        import cProfile

        cProfile.run("main()", "/tmp/i15-hist.prof")
    else:
        main()
