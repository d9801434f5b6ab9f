"""Part 3: signed Stripe events at the webhook on PostgreSQL, against a minimal handler.

20,000 deliveries (quick: 400) of `checkout.session.completed` and `invoice.paid` events built
from Stripe's example objects like the tests build them (tests/stripe_events.py, from
tests/fixtures/stripe/fixtures3.json), 10% of them repeats of an earlier event, in a shuffled order.
They are signed just before they go, 5,000 at a time (the webhook allows 5 minutes), and sent
by wrk with bench/webhooks.lua over 8 connections. The app and bench/minimal_webhook.py run under the same
gunicorn settings, alternately, in one run. The app's webhook only verifies and stores; workers
(`flask --app wsgi worker --no-schedules --no-mail`, separate processes) apply what was stored:

- acknowledgement: the burst sent with no worker running (the same work as the minimal handler's);
- apply throughput: that backlog applied by 1 worker, then (the burst sent again) by 2 workers,
  events/s from the first event applied to the last (the database's own timestamps);
- lag: the burst sent while 2 workers run, each event's applied_at - received_at (p50, p99, max).

After each app run the ledger is checked: exactly one paid gift per distinct paying event, with
the expected total, and every event applied.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from common import (
    BENCH,
    BENCH_WEBHOOK_SECRET,
    BIN,
    ROOT,
    THREADS,
    WORKERS,
    Options,
    Section,
    app_env,
    fmt,
    gunicorn,
    libpq_url,
    log,
    median,
    sql,
    wrk,
)

sys.path.insert(0, str(ROOT))
from donations.payments.handlers import handler_for
from donations.payments.signing import sign
from tests import stripe_events as se

CONNECTIONS = 8
WRK_THREADS = 2
DUPLICATE_SHARE = 0.10
CHUNK = 5_000  # deliveries signed and sent at a time
TARGET_RATIO = 0.8
SEED = 20_260_101
# Tables the webhook runs leave as they are: the schema's version, the fund, the installation id (whose
# events are ours), the floor's table.
KEPT_TABLES = ("alembic_version", "funds", "installation", "bench_minimal_events")


@dataclass
class Delivered:
    """One run: every delivery sent and answered."""

    seconds: float
    p50_ms: float  # the median of the chunks' medians
    p99_ms: float  # the worst of the chunks' 99th percentiles
    answered: int
    failed: int
    wrk_cpu_seconds: float
    output: str


@dataclass
class Deliveries:
    bodies: list[bytes]  # in sending order, repeats included
    distinct: int
    expected_gifts: int
    expected_cents: int
    kinds: dict[str, int] = field(default_factory=dict)


def build(total: int, invoices_make_gifts: bool) -> Deliveries:
    """`total` deliveries: distinct events, half one-time checkouts and half subscription
    invoices (two per subscription: the first and a renewal), plus 10% repeats."""
    rng = random.Random(SEED)
    repeats = round(total * DUPLICATE_SHARE)
    distinct = total - repeats
    donors = max(1, distinct // 3)  # readers give more than once: donor matching is exercised
    events: list[dict[str, object]] = []
    expected_gifts = expected_cents = 0
    base_time = 1_767_225_600  # 2026-01-01 UTC
    for n in range(distinct // 2):
        amount = rng.choice([1000, 2500, 5000, 10000, 25000]) + rng.randrange(0, 100)
        email = f"reader{rng.randrange(donors)}@example.org"
        session = se.checkout_session(amount_cents=amount, email=email, name=f"Reader {n}")
        events.append(se.event("checkout.session.completed", session, created=base_time + n))
        expected_gifts += 1
        expected_cents += amount
    invoices = distinct - len(events)
    for n in range(0, invoices, 2):
        subscription = se.unique("sub")
        customer = se.unique("cus")
        amount = rng.choice([500, 1000, 1500, 2500])
        email = f"reader{rng.randrange(donors)}@example.org"
        for month in range(min(2, invoices - n)):
            paid_at = base_time + n + month * 31 * 86_400
            invoice = se.invoice(
                subscription=subscription,
                customer=customer,
                amount_cents=amount,
                paid_at=paid_at,
                period_start=paid_at,
                billing_reason="subscription_create" if month == 0 else "subscription_cycle",
                email=email,
                name=f"Member {n}",
            )
            events.append(se.event("invoice.paid", invoice, created=paid_at))
            if invoices_make_gifts:
                expected_gifts += 1
                expected_cents += amount
    deliveries = [json.dumps(event, separators=(",", ":")).encode() for event in events]
    deliveries += [deliveries[rng.randrange(distinct)] for _ in range(repeats)]
    rng.shuffle(deliveries)
    kinds: dict[str, int] = {}
    for event in events:
        kinds[str(event["type"])] = kinds.get(str(event["type"]), 0) + 1
    return Deliveries(deliveries, distinct, expected_gifts, expected_cents, kinds)


def write_signed(bodies: list[bytes], path: Path) -> None:
    """Sign every delivery now: they must arrive within the webhook's 5-minute tolerance."""
    with path.open("wb") as handle:
        for body in bodies:
            handle.write(sign(body, BENCH_WEBHOOK_SECRET).encode() + b"\t" + body + b"\n")


def empty_ledger(database_url: str) -> None:
    tables = [
        row[0]
        for row in sql(
            database_url,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND NOT tablename = ANY(%s)",
            [list(KEPT_TABLES)],
        )
    ]
    sql(database_url, f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    sql(database_url, "TRUNCATE bench_minimal_events")
    sql(database_url, "VACUUM ANALYZE")


def check_ledger(database_url: str, deliveries: Deliveries) -> tuple[bool, str]:
    events, unapplied = sql(
        database_url, "SELECT count(*), count(*) FILTER (WHERE applied_at IS NULL) FROM stripe_events"
    )[0]
    gifts, cents = sql(
        database_url, "SELECT count(*), coalesce(sum(amount_cents), 0) FROM gifts WHERE status = 'paid'"
    )[0]
    all_gifts = sql(database_url, "SELECT count(*) FROM gifts")[0][0]
    ok = (
        events == deliveries.distinct
        and unapplied == 0
        and gifts == all_gifts == deliveries.expected_gifts
        and cents == deliveries.expected_cents
    )
    summary = (
        f"{events:,} events stored ({unapplied} not applied), {gifts:,} paid gifts of {all_gifts:,} totalling "
        f"{cents:,} cents; expected {deliveries.distinct:,} events, {deliveries.expected_gifts:,} gifts, "
        f"{deliveries.expected_cents:,} cents"
    )
    return ok, summary


@dataclass
class Applied:
    workers: int
    events_per_s: float
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float


def start_workers(env: dict[str, str], count: int, out_dir: Path) -> list[subprocess.Popen[bytes]]:
    command = [str(BIN / "flask"), "--app", "wsgi", "worker", "--no-schedules", "--no-mail"]
    workers = []
    for n in range(count):
        log_file = (out_dir / f"worker-{n}.log").open("ab")
        workers.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log_file, stderr=log_file))
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)  # each finishes the event in hand
    for worker in workers:
        if worker.wait(60) != 0:
            raise RuntimeError(f"a worker exited with {worker.returncode}")


def wait_applied(database_url: str, distinct: int, timeout: float = 3_600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sql(database_url, "SELECT count(*) FROM stripe_events WHERE applied_at IS NOT NULL")[0][0] >= distinct:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the workers did not apply {distinct} events within {timeout:.0f} s")


def apply_figures(database_url: str, workers: int) -> Applied:
    """From the database's own timestamps: events/s from the first applied to the last, and each
    event's lag from being stored (acknowledged) to being applied."""
    count, span, p50, p99, worst = sql(
        database_url,
        "SELECT count(*), extract(epoch FROM max(applied_at) - min(applied_at)),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM applied_at - received_at)),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM applied_at - received_at)),"
        " max(extract(epoch FROM applied_at - received_at)) FROM stripe_events",
    )[0]
    return Applied(workers, count / max(float(span), 1e-6), float(p50), float(p99), float(worst))


def in_process_cost(options: Options, deliveries: int) -> dict[str, Any]:
    """bench/ack_cost.py in a process of its own (it builds the app in its production
    configuration): per delivery, CPU microseconds and Python calls of each handler."""
    completed = subprocess.run(
        [
            *(sys.executable, str(BENCH / "ack_cost.py"), options.database_url, "--keep-schema", "--json"),
            *("-n", str(deliveries), "--runs", str(options.runs)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench/ack_cost.py failed:\n{completed.stdout}\n{completed.stderr}")
    return {"deliveries": deliveries, **json.loads(completed.stdout.strip().splitlines()[-1])}


def run(options: Options) -> Section:
    import minimal_webhook

    # --deliveries: a smaller burst for a quick check, or on a machine too busy for 20,000.
    total = options.deliveries or (400 if options.quick else 20_000)
    invoices_make_gifts = handler_for("invoice.paid") is not None
    deliveries = build(total, invoices_make_gifts)
    events_file = options.out_dir / "webhook-deliveries.txt"
    with psycopg.connect(libpq_url(options.database_url), autocommit=True) as connection:
        minimal_webhook.create_table(connection)
    env = app_env(options.database_url)
    results: dict[str, list[Delivered]] = {"app": [], "minimal": []}
    checks: list[tuple[bool, str]] = []
    floor_checks: list[bool] = []
    throughput: dict[int, list[float]] = {1: [], 2: []}
    lags: list[Applied] = []
    acks_under_load: list[Delivered] = []

    def send(url: str) -> Delivered:
        """All deliveries, in chunks each signed just before it goes (a slow run must not
        outlive the signatures' 5-minute tolerance); the run's time is the chunks' sum."""
        chunks = []
        for start in range(0, total, CHUNK):
            write_signed(deliveries.bodies[start : start + CHUNK], events_file)
            chunks.append(
                wrk(
                    url + "/stripe/webhook",
                    duration="280s",  # a bound only: wrk is stopped when every delivery is answered
                    connections=CONNECTIONS,
                    threads=WRK_THREADS,
                    script=BENCH / "webhooks.lua",
                    script_args=[str(events_file), str(WRK_THREADS)],
                    finished_marker="thread-done",
                )
            )
        return Delivered(
            seconds=sum(c.duration_s for c in chunks),
            p50_ms=median([c.p50_ms for c in chunks]),
            p99_ms=max(c.p99_ms for c in chunks),
            answered=sum(c.script["answered"] for c in chunks),
            failed=sum(c.script["failed"] for c in chunks),
            wrk_cpu_seconds=sum(c.cpu_seconds for c in chunks),
            output="\n".join(c.output for c in chunks),
        )

    with (
        gunicorn("app-webhooks", "wsgi:app", env, options.out_dir) as app,
        gunicorn("minimal-webhook", "minimal_webhook:app", env, options.out_dir, pythonpath=str(BENCH)) as minimal,
    ):
        for run_number in range(options.runs):
            order = ["app", "minimal"] if run_number % 2 == 0 else ["minimal", "app"]
            for name in order:
                empty_ledger(options.database_url)
                result = send((app if name == "app" else minimal).url)
                answered, failed = result.answered, result.failed
                if answered != total:
                    raise RuntimeError(f"{name}: {answered} of {total} deliveries answered:\n{result.output}")
                if name == "app":
                    # The backlog the burst left, applied by 1 worker; the burst again, by 2.
                    for count in (1, 2):
                        if count == 2:
                            empty_ledger(options.database_url)
                            send(app.url)
                        workers = start_workers(env, count, options.out_dir)
                        wait_applied(options.database_url, deliveries.distinct)
                        stop_workers(workers)
                        throughput[count].append(apply_figures(options.database_url, count).events_per_s)
                        checks.append(check_ledger(options.database_url, deliveries))
                        log(f"webhooks run {run_number + 1}, {count} worker(s): {throughput[count][-1]:.0f} events/s")
                    # The lag: the burst sent while 2 workers apply it.
                    empty_ledger(options.database_url)
                    workers = start_workers(env, 2, options.out_dir)
                    acks_under_load.append(send(app.url))
                    wait_applied(options.database_url, deliveries.distinct)
                    stop_workers(workers)
                    lags.append(apply_figures(options.database_url, 2))
                    checks.append(check_ledger(options.database_url, deliveries))
                    log(f"webhooks run {run_number + 1} app: {checks[-1][1]}")
                else:
                    stored = sql(options.database_url, "SELECT count(*) FROM bench_minimal_events")[0][0]
                    floor_checks.append(stored == deliveries.distinct and failed == 0)
                if failed:
                    log(f"{name}: {failed} deliveries were not answered 200")
                log(f"webhooks run {run_number + 1} {name}: {total / result.seconds:.0f} deliveries/s")
                results[name].append(result)

    # The same comparison in process, by CPU time and Python calls: load-independent where
    # deliveries/s through gunicorn are not (bench/ack_cost.py).
    log("webhooks: in-process cost of an acknowledgement")
    cost = in_process_cost(options, 300 if options.quick else min(total, 2_000))

    def rate(result: Delivered) -> float:
        return total / result.seconds

    rows = []
    for name, label in (("minimal", "minimal handler (verify, insert id, commit)"), ("app", "the app's webhook")):
        runs = results[name]
        rows.append(
            [
                label,
                fmt(median([rate(r) for r in runs])),
                fmt(median([deliveries.distinct / r.seconds for r in runs])),
                fmt(median([r.p50_ms for r in runs]), 1),
                fmt(median([r.p99_ms for r in runs]), 1),
                ", ".join(fmt(rate(r)) for r in runs),
                fmt(cost[name]["process_us"] + cost[name]["database_us"]),
                fmt(cost[name]["calls"]),
            ]
        )
    ratio = median([rate(r) for r in results["app"]]) / median([rate(r) for r in results["minimal"]])
    per_run = [rate(a) / rate(m) for a, m in zip(results["app"], results["minimal"], strict=True)]
    ledger_ok = all(ok for ok, _ in checks) and all(floor_checks)

    def cpu(name: str) -> float:
        return cost[name]["process_us"] + cost[name]["database_us"]

    in_process_ratio = cpu("minimal") / cpu("app")
    calls_ratio = cost["minimal"]["calls"] / cost["app"]["calls"]
    wrk_cpu = median([r.wrk_cpu_seconds / r.seconds for r in results["app"] + results["minimal"]])
    section = Section(
        title="3. Webhooks: signed events on PostgreSQL vs a minimal handler",
        headers=[
            "handler",
            "deliveries/s",
            "distinct events applied/s",
            "p50 ms",
            "p99 ms",
            "each run, deliveries/s",
            "in process: CPU us / delivery (handler + database)",
            "in process: Python calls / delivery",
        ],
        rows=rows,
        commands=[
            f"gunicorn --workers {WORKERS} --threads {THREADS} --worker-class gthread wsgi:app   (production config)",
            f"gunicorn --workers {WORKERS} --threads {THREADS} --worker-class gthread minimal_webhook:app",
            f"wrk --latency -t {WRK_THREADS} -c {CONNECTIONS} -s bench/webhooks.lua URL/stripe/webhook -- "
            f"DELIVERIES_FILE {WRK_THREADS}",
            f"bench/ack_cost.py DATABASE_URL --keep-schema --runs {options.runs} -n {cost['deliveries']}",
        ],
        ok=ledger_ok,
    )
    kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(deliveries.kinds.items()))
    section.notes = [
        f"Ratio app / minimal = **{ratio:.2f}** "
        f"(target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}); "
        f"per run: {', '.join(f'{x:.2f}' for x in per_run)}. In process (both WSGI apps called directly, "
        f"{cost['deliveries']:,} deliveries, bench/ack_cost.py): minimal / app = **{in_process_ratio:.2f}** by CPU "
        f"time (the handler's process and its PostgreSQL backend), {calls_ratio:.2f} by Python calls.",
        f"{total:,} deliveries per run: {deliveries.distinct:,} distinct events ({kinds}) and "
        f"{total - deliveries.distinct:,} repeats of earlier ones, shuffled; sent in chunks of {CHUNK:,}, "
        "each signed just before it went (the run's time is the sum of the chunks'; p99 is the worst "
        "chunk's). Checkout "
        "sessions carry no gift id (as from a Payment Link), so each creates its gift; readers repeat across "
        "gifts (one donor per three events). Subscriptions are unknown to the app (as if made in Stripe's "
        "dashboard): two invoices each, the first and a renewal.",
        "invoice.paid is handled: each paid invoice is one installment gift."
        if invoices_make_gifts
        else "invoice.paid had no handler when this ran: those events were stored and acknowledged, no gift.",
        "Ledger after each app run: "
        + ("**exact**" if ledger_ok else "**WRONG**")
        + f" ({checks[-1][1] if checks else 'no run'}).",
        f"The load generator used {wrk_cpu:.0%} of one core (wrk's CPU time over the run's duration).",
        f"Apply throughput (distinct events applied per second by separate worker processes, from the first "
        f"applied to the last): 1 worker **{median(throughput[1]):,.0f}** events/s, 2 workers "
        f"**{median(throughput[2]):,.0f}** events/s (each run: "
        f"{', '.join(f'{a:.0f}/{b:.0f}' for a, b in zip(throughput[1], throughput[2], strict=True))}).",
        f"Lag from acknowledgement to applied, the burst sent while 2 workers ran: p50 "
        f"**{median([x.lag_p50_s for x in lags]):.2f} s**, p99 **{median([x.lag_p99_s for x in lags]):.2f} s**, "
        f"max **{median([x.lag_max_s for x in lags]):.2f} s**; the webhook meanwhile acknowledged "
        f"{median([total / r.seconds for r in acks_under_load]):,.0f} deliveries/s (the workers share the cores).",
    ]
    return section
