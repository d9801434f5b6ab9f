"""Outgoing webhooks: what queueing an event adds to the worker's apply step, and how fast one and
two delivery workers empty the queue into a local receiver (which checks every signature).

    .venv/bin/python bench/outgoing_webhooks.py [--events 2000] [--database-url URL]

Default database: a fresh SQLite file (the two-worker pass then waits on SQLite's one writer);
give a PostgreSQL URL for SKIP LOCKED. The apply step is the real `checkout.session.completed`
handler, one transaction per event as the worker runs it, with no endpoint and then with one
endpoint asking for every event. The receiver is a ThreadingHTTPServer on 127.0.0.1 answering
200 to a valid signature; after each pass every event must have arrived exactly once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


class Receiver:
    def __init__(self) -> None:
        from donations.webhooks.signing import HEADER, verify

        self.secret = ""  # the endpoint's, once it is made
        self.ids: Counter[str] = Counter()
        self.bad = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(receiver.secret, self.headers.get(HEADER, ""), body, int(time.time()))
                with lock:
                    if ok:
                        receiver.ids[json.loads(body)["id"]] += 1
                    else:
                        receiver.bad += 1
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--database-url", default=None)
    options = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import event as sa_event
    from sqlalchemy import text, update

    from donations import create_app
    from donations.extensions import db, unit_of_work
    from donations.ledger import funds
    from donations.payments.handlers import StripeEventData
    from donations.payments.handlers.checkout import checkout_paid
    from donations.webhooks import admin
    from donations.webhooks.delivery import WebhookWorker
    from donations.webhooks.models import DeliveryStatus, EventType, WebhookDelivery
    from tests import stripe_events as se

    database_url = options.database_url or f"sqlite:///{tempfile.mkdtemp()}/outgoing-webhooks-bench.sqlite"
    app = create_app("development", {"SQLALCHEMY_DATABASE_URI": database_url, "WORKER_IN_APP": False})
    n = options.events
    statements = Counter()  # SQL statements per pass: a figure the machine's load does not move

    with app.app_context():
        upgrade(directory=str(HERE.parent / "migrations"))

        @sa_event.listens_for(db.engine, "before_cursor_execute")
        def count(*args: object) -> None:
            statements[threading.current_thread().name] += 1

        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                if table.name != "alembic_version":
                    connection.execute(table.delete())
            se.insert_test_installation(connection)
        with unit_of_work():
            funds.create_fund(slug="community-forums", name="Community Forums", is_default=True)

        def apply(count: int, start: int) -> float:
            events = [
                StripeEventData.from_payload(
                    se.event(
                        "checkout.session.completed",
                        se.checkout_session(amount_cents=1_000 + k, email=f"donor{k}@example.org"),
                    )
                )
                for k in range(start, start + count)
            ]
            statements.clear()
            began = time.perf_counter()
            for event in events:
                with unit_of_work():
                    checkout_paid(event)
            return (time.perf_counter() - began) / count * 1000, statements.total() / count

        bare_ms, bare_sql = apply(n, 0)
        receiver = Receiver()
        with unit_of_work():
            endpoint = admin.create_endpoint(
                admin.EndpointSettings(receiver.url, "bench", [str(t) for t in EventType], True),
                actor=_bench_admin(),
                remote_addr=None,
            )
            receiver.secret = endpoint.secret
        queued_ms, queued_sql = apply(n, n)

    def drain(workers: int) -> tuple[float, Counter[str]]:
        receiver.ids.clear()
        statements.clear()
        barrier = threading.Barrier(workers + 1)

        def work(k: int) -> None:
            with app.app_context():
                barrier.wait()
                WebhookWorker(f"bench-{k}").drain()
                db.session.remove()

        threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
        for thread in threads:
            thread.start()
        barrier.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        return time.perf_counter() - began, Counter(receiver.ids)

    one_seconds, one_ids = drain(1)
    delivery_sql = statements.total() / n
    with app.app_context():
        db.session.execute(update(WebhookDelivery).values(status=DeliveryStatus.PENDING, attempts=0))
        db.session.commit()
    two_seconds, two_ids = drain(2)
    with app.app_context():
        delivered = db.session.scalar(text("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"))

    print(f"database: {database_url.split('://')[0]}, {n} events")
    print("| measure | figure |\n|---|---:|")
    print(f"| apply step, no endpoint (ms/event) | {bare_ms:.2f} |")
    print(f"| apply step, one endpoint: event and delivery queued (ms/event) | {queued_ms:.2f} |")
    print(f"| apply step, no endpoint (SQL statements/event) | {bare_sql:.1f} |")
    print(f"| apply step, one endpoint (SQL statements/event) | {queued_sql:.1f} |")
    print(f"| delivery, 1 worker (SQL statements/delivery) | {delivery_sql:.1f} |")
    print(f"| delivery, 1 worker (deliveries/s) | {n / one_seconds:.0f} |")
    print(f"| delivery, 2 workers (deliveries/s) | {n / two_seconds:.0f} |")
    for label, ids in (("1 worker", one_ids), ("2 workers", two_ids)):
        exact = len(ids) == n and set(ids.values()) == {1}
        print(f"{label}: {len(ids)} events received, each once: {exact}")
    print(f"bad signatures: {receiver.bad}; deliveries recorded delivered: {delivered}")


def _bench_admin():
    from donations.accounts.service import create_staff_user

    return create_staff_user("bench-admin@example.org", "admin", "correct horse battery staple")


if __name__ == "__main__":
    main()
