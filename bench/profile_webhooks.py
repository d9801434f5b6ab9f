"""In-process cost of the webhook: CPU ms and SQL statements per delivery, for part 3's mix.

Builds the deliveries exactly as bench/webhooks.py does (`build`), empties the given PostgreSQL
database, makes its schema and a default fund, then posts each signed delivery through Flask's
test client to the app in its production configuration. CPU time (time.process_time, which
includes the test client's own work, a few tenths of a millisecond) is robust to a busy machine
where wall-clock time is not; statements are counted with SQLAlchemy's before_cursor_execute
(SAVEPOINTs included; not the COMMIT, which psycopg sends without a cursor). At the end the
ledger is checked as part 3 checks it.

    .venv/bin/python bench/profile_webhooks.py postgresql+psycopg://postgres@127.0.0.1:5432/DB \
        [-n 1000] [--profile FILE] [--show K]

The database is emptied: never point it at one that matters.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import create_engine, event, text  # noqa: E402
from webhooks import build  # noqa: E402

from donations.payments import events as applied_events  # noqa: E402
from donations.payments.signing import sign  # noqa: E402

SECRET = "whsec_profile"
WARM_UP = 100  # deliveries first sent and not counted: imports, caches, prepared statements


def _reset(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _app(url: str):  # type: ignore[no-untyped-def]
    # The production configuration, as part 3 runs it (bench/common.py `app_env`).
    os.environ.update(
        DONATIONS_CONFIG="production",
        SECRET_KEY="profile-secret-key-profile-secret-key",
        DATABASE_URL=url,
        STRIPE_SECRET_KEY="sk_test_profile",
        STRIPE_WEBHOOK_SECRET=SECRET,
        STRIPE_API_BASE="http://127.0.0.1:9",
        PUBLIC_URL="https://give.example.org",
        TRUSTED_HOSTS="127.0.0.1,localhost,give.example.org",
        SMTP_URL="smtp://127.0.0.1:9",
    )
    from flask_migrate import upgrade

    from donations import create_app
    from donations.extensions import db
    from donations.ledger.funds import create_fund
    from tests.stripe_events import insert_test_installation

    app = create_app("production")
    with app.app_context():
        upgrade()
        # The events are built like the tests' (tests/stripe_events.py): they name the tests'
        # installation id, so this database takes it as its own.
        with db.engine.begin() as connection:
            insert_test_installation(connection)
        create_fund(slug="general", name="General", is_default=True)
        db.session.commit()
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("-n", type=int, default=2000, help="deliveries measured (plus a warm-up)")
    parser.add_argument("--profile", metavar="FILE", help="write the cProfile (CPU time) of the measured run here")
    parser.add_argument("--show", type=int, default=0, metavar="K", help="print the SQL of K measured deliveries")
    args = parser.parse_args()

    _reset(args.database_url)
    app = _app(args.database_url)
    deliveries = build(WARM_UP + args.n, invoices_make_gifts=True)
    client = app.test_client()

    from donations.extensions import db

    with app.app_context():
        engine = db.engine
    statements = [0]
    shown = False

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements[0] += 1
        if shown:
            print("    " + " ".join(statement.split())[:150])

    by_type: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])  # count, cpu, statements
    outcomes: dict[str, int] = defaultdict(int)
    profiler = cProfile.Profile(time.process_time)  # CPU, not waiting on the database
    total_cpu = 0.0
    total_statements = 0
    for index, body in enumerate(deliveries.bodies):
        headers = {"Stripe-Signature": sign(body, SECRET), "Content-Type": "application/json"}
        measured = index >= WARM_UP
        kind = json.loads(body)["type"]
        before_statements = statements[0]
        shown = measured and index < WARM_UP + args.show
        if shown:
            print(f"{kind}:")
        if measured and args.profile:
            profiler.enable()
        started = time.process_time()
        response = client.post("/stripe/webhook", data=body, headers=headers)
        cpu = time.process_time() - started
        if measured and args.profile:
            profiler.disable()
        if response.status_code != 200:
            raise SystemExit(f"delivery {index} answered {response.status_code}: {response.get_data(as_text=True)}")
        if not measured:
            continue
        outcome = response.get_json()["received"]  # stored or duplicate: the worker applies
        outcomes[outcome] += 1
        key = f"{kind} ({outcome})"
        used = statements[0] - before_statements
        by_type[key][0] += 1
        by_type[key][1] += cpu
        by_type[key][2] += used
        total_cpu += cpu
        total_statements += used

    with app.app_context():
        applied_events.apply_pending()  # the worker's apply step, before the ledger is checked
    with app.app_context():
        events, unapplied = db.session.execute(
            text("SELECT count(*), count(*) FILTER (WHERE applied_at IS NULL) FROM stripe_events")
        ).one()
        gifts, cents = db.session.execute(
            text("SELECT count(*), coalesce(sum(amount_cents), 0) FROM gifts WHERE status = 'paid'")
        ).one()
    exact = (events, unapplied, gifts, cents) == (
        deliveries.distinct,
        0,
        deliveries.expected_gifts,
        deliveries.expected_cents,
    )
    n = args.n
    print(f"deliveries measured: {n} (after {WARM_UP} not counted); outcomes: {dict(outcomes)}")
    print(f"all: {total_cpu * 1000 / n:.2f} ms CPU, {total_statements / n:.2f} statements per delivery")
    for key, (count, cpu, used) in sorted(by_type.items()):
        print(f"  {key}: {int(count)} deliveries, {cpu * 1000 / count:.2f} ms CPU, {used / count:.2f} statements")
    print(
        f"ledger: {events} events ({unapplied} not applied), {gifts} paid gifts, {cents} cents:"
        f" {'exact' if exact else 'NOT EXACT'}"
    )
    if args.profile:
        profiler.dump_stats(args.profile)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())


if __name__ == "__main__":
    main()
