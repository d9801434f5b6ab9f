"""In-process cost of acknowledging a webhook delivery: the app's /stripe/webhook against the
minimal verify-store handler (bench/minimal_webhook.py), on the same PostgreSQL database.

Both WSGI apps are called directly (no server, no test client) with the same signed deliveries
as part 3 (`webhooks.build`: checkouts and invoices, 10% repeats), each request prepared
before its measurement starts. Per delivery, for each handler:

- CPU time of this process (`time.process_time`): the handler's own work, Flask's included;
- CPU time of its PostgreSQL backend (`/proc/PID/stat`, 10 ms ticks: meaningful over thousands
  of deliveries): the INSERT and COMMIT the database does for it;
- Python function calls (one more pass under cProfile): the same count however busy the
  machine is, so a change shows up even when CPU times are noisy;
- with --instructions, machine instructions of this process (valgrind's callgrind, counting
  only while the deliveries are sent): load-independent too, and weighted as CPU time is.

"Ratio" is minimal / app for the app process plus its backend: what deliveries/s through gunicorn
would be if both were bound by that CPU alone (gunicorn's own HTTP work, the same for both, moves
the real ratio towards 1). Part 3 prints it beside the deliveries/s it measures.

    .venv/bin/python bench/ack_cost.py postgresql+psycopg://postgres@127.0.0.1:5432/DB \
        [-n 2000] [--runs 3] [--keep-schema] [--json] [--profile FILE] [--instructions]

The database is emptied (its schema re-made unless --keep-schema): never point it at one that
matters.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from common import (  # noqa: E402
    BENCH_WEBHOOK_SECRET,
    app_env,
    ensure_database,
    libpq_url,
    median,
    prepare_app_database,
    sql,
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
WARM_UP = 100  # deliveries sent first and not counted: imports, caches, the pool, prepared statements
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Cost:
    """Per delivery, in microseconds of CPU, and Python function calls."""

    process_us: float
    database_us: float
    calls: float

    @property
    def total_us(self) -> float:
        return self.process_us + self.database_us


def backend_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def call(app: WSGIApp, environ: dict[str, Any]) -> str:
    status: list[str] = []
    body = app(environ, lambda s, headers, exc_info=None: status.append(s))
    b"".join(body)
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return status[0]


def environs(bodies: list[bytes]) -> list[dict[str, Any]]:
    """Each delivery as a WSGI request, signed now (the webhook allows 5 minutes)."""
    from werkzeug.test import EnvironBuilder

    from donations.payments.signing import sign

    return [
        EnvironBuilder(
            path="/stripe/webhook",
            method="POST",
            data=body,
            base_url="http://127.0.0.1",
            headers={"Stripe-Signature": sign(body, BENCH_WEBHOOK_SECRET), "Content-Type": "application/json"},
        ).get_environ()
        for body in bodies
    ]


def measure(app: WSGIApp, backend_pid: int, bodies: list[bytes], empty: Callable[[], None]) -> tuple[float, float]:
    """CPU seconds of this process and of the backend for all `bodies`, from empty tables."""
    empty()
    prepared = environs(bodies)
    backend_before = backend_cpu_seconds(backend_pid)
    started = time.process_time()
    for environ in prepared:
        status = call(app, environ)
        if not status.startswith("200"):
            raise SystemExit(f"a delivery was answered {status}")
    process = time.process_time() - started
    return process, backend_cpu_seconds(backend_pid) - backend_before


def count_calls(app: WSGIApp, bodies: list[bytes], empty: Callable[[], None], profile: Path | None) -> float:
    empty()
    prepared = environs(bodies)
    profiler = cProfile.Profile()
    profiler.enable()
    for environ in prepared:
        call(app, environ)
    profiler.disable()
    if profile is not None:
        profiler.dump_stats(profile)
    return pstats.Stats(profiler).total_calls / len(bodies)  # type: ignore[attr-defined]


def run(database_url: str, deliveries: int, runs: int, profile: Path | None = None) -> dict[str, Cost]:
    from webhooks import build

    apps = _setup(database_url)
    import minimal_webhook
    from sqlalchemy import text

    from donations.extensions import db

    app, floor = apps["app"], apps["minimal"]
    warm_up = build(WARM_UP, invoices_make_gifts=True).bodies
    bodies = build(deliveries, invoices_make_gifts=True).bodies

    def empty() -> None:
        sql(database_url, "TRUNCATE stripe_events, bench_minimal_events")

    handlers: dict[str, tuple[WSGIApp, int]] = {}
    for name, handler in (("app", app), ("minimal", floor)):
        empty()
        for environ in environs(warm_up):
            call(handler, environ)
        if name == "app":
            # Requests run one at a time here, so the pool hands out this one connection each time.
            with app.app_context():
                pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
                db.session.close()
        else:
            pid = minimal_webhook._connection().info.backend_pid
        handlers[name] = (handler, pid)

    measured: dict[str, list[tuple[float, float]]] = {"app": [], "minimal": []}
    for run_number in range(runs):
        order = ["app", "minimal"] if run_number % 2 == 0 else ["minimal", "app"]
        for name in order:
            handler, pid = handlers[name]
            measured[name].append(measure(handler, pid, bodies, empty))
    costs = {}
    for name, (handler, _) in handlers.items():
        calls = count_calls(handler, bodies, empty, profile if name == "app" else None)
        costs[name] = Cost(
            process_us=median([p for p, _ in measured[name]]) / deliveries * 1e6,
            database_us=median([d for _, d in measured[name]]) / deliveries * 1e6,
            calls=calls,
        )
    empty()
    return costs


def _setup(database_url: str) -> dict[str, WSGIApp]:
    os.environ.update(app_env(database_url))
    import minimal_webhook
    import psycopg

    from donations import create_app

    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        minimal_webhook.create_table(connection)
    return {"app": create_app("production"), "minimal": minimal_webhook.app}


def _callgrind_child(database_url: str, name: str, deliveries: int) -> None:
    """Run under callgrind with instrumentation off: warm up, then count only the deliveries."""
    from webhooks import build

    handler = _setup(database_url)[name]
    sql(database_url, "TRUNCATE stripe_events, bench_minimal_events")
    for environ in environs(build(WARM_UP, invoices_make_gifts=True).bodies):
        call(handler, environ)
    sql(database_url, "TRUNCATE stripe_events, bench_minimal_events")
    prepared = environs(build(deliveries, invoices_make_gifts=True).bodies)
    control = ["callgrind_control", "--instr"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    time.sleep(0.5)  # callgrind reads the request asynchronously; sleeping costs no instructions
    for environ in prepared:
        call(handler, environ)
    time.sleep(0.5)
    subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


def instructions(database_url: str, deliveries: int) -> dict[str, float]:
    """Instructions per delivery of each handler's process, by callgrind (one run each: the
    count barely moves from run to run). Slow: about a minute for a few hundred deliveries."""
    counts = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("app", "minimal"):
            out = Path(scratch) / f"{name}.callgrind"
            command = [
                *("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"),
                *(sys.executable, __file__, database_url, "--keep-schema", "-n", str(deliveries)),
                *("--callgrind-child", name),
            ]
            subprocess.run(command, check=True, capture_output=True)
            totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
            counts[name] = int(totals[0].split()[1]) / deliveries
    return counts


def ratio(costs: dict[str, Cost]) -> float:
    return costs["minimal"].total_us / costs["app"].total_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("-n", "--deliveries", type=int, default=2000, help="deliveries measured per run")
    parser.add_argument("--runs", type=int, default=3, help="runs of each handler, alternating (median)")
    parser.add_argument("--keep-schema", action="store_true", help="the app's schema is already there")
    parser.add_argument("--json", action="store_true", help="print one JSON object (for bench/webhooks.py)")
    parser.add_argument("--profile", type=Path, help="write the app's cProfile stats here")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions per delivery with valgrind's callgrind"
    )
    parser.add_argument("--callgrind-child", choices=("app", "minimal"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.callgrind_child:
        _callgrind_child(args.database_url, args.callgrind_child, args.deliveries)
        return

    if not args.keep_schema:
        ensure_database(args.database_url)
        prepare_app_database(args.database_url)
    costs = run(args.database_url, args.deliveries, args.runs, args.profile)
    if args.json:
        print(json.dumps({name: asdict(cost) for name, cost in costs.items()}))
        return
    print(f"{args.deliveries} deliveries, median of {args.runs} runs, per delivery:")
    print("handler  process us  database us  total us  Python calls")
    for name, cost in costs.items():
        print(f"{name:<8} {cost.process_us:10.0f}  {cost.database_us:11.0f}  {cost.total_us:8.0f}  {cost.calls:12.0f}")
    calls = costs["minimal"].calls / costs["app"].calls
    print(f"ratio minimal / app: {ratio(costs):.2f} (CPU, process + database), {calls:.2f} (Python calls)")
    if args.instructions:
        counts = instructions(args.database_url, min(args.deliveries, 300))
        print(
            f"instructions per delivery (callgrind): app {counts['app']:,.0f}, minimal {counts['minimal']:,.0f}, "
            f"ratio {counts['minimal'] / counts['app']:.2f}"
        )


if __name__ == "__main__":
    main()
