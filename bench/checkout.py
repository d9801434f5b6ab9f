"""Part 2: POST /give with valid forms through the Stripe gateway, against bench/fake_stripe.py.

The CSRF token stays on: one token and its session cookie are fetched from GET /give and sent
with every form (a token is bound to the session, not to one use). The per-address limit on
checkouts (GIVE_RATE_LIMIT, 10 per minute) would stop a load generator on one address after 10
forms, so it is raised for this measurement through the environment, and only here.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from http.cookies import SimpleCookie

from common import (
    BENCH,
    THREADS,
    WORKERS,
    Options,
    Section,
    WrkResult,
    app_env,
    fmt,
    free_port,
    gunicorn,
    log,
    median,
    sql,
    stop,
    wrk,
)

CONNECTIONS = 8
RAISED_LIMIT = "1000000 per minute"


@contextlib.contextmanager
def fake_stripe() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "fake_stripe.py"), "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the fake Stripe server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def sessions_made(stripe_url: str) -> int:
    with urllib.request.urlopen(stripe_url + "/count") as response:
        return int(json.load(response)["checkout_sessions"])


def token_and_cookie(app_url: str) -> tuple[str, str]:
    """What a browser gets from the gift page: the form's CSRF token and the session cookie."""
    import re

    with urllib.request.urlopen(app_url + "/give") as response:
        page = response.read().decode()
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    if not match or not cookies:
        raise RuntimeError("GET /give gave no CSRF token or no session cookie")
    return match.group(1), "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


def run(options: Options) -> Section:
    duration, warmup = ("1s", "1s") if options.quick else ("10s", "2s")
    results: list[WrkResult] = []
    with fake_stripe() as stripe_url:
        env = app_env(options.database_url, stripe_url, GIVE_RATE_LIMIT=RAISED_LIMIT)
        with gunicorn("app-checkout", "wsgi:app", env, options.out_dir) as app:
            token, cookie = token_and_cookie(app.url)
            script_args = [cookie, token]
            before_gifts = sql(options.database_url, "SELECT count(*) FROM gifts")[0][0]
            before_sessions = sessions_made(stripe_url)
            warm = wrk(
                app.url,
                duration=warmup,
                connections=CONNECTIONS,
                script=BENCH / "checkout.lua",
                script_args=script_args,
            )
            for run_number in range(options.runs):
                result = wrk(
                    app.url,
                    duration=duration,
                    connections=CONNECTIONS,
                    script=BENCH / "checkout.lua",
                    script_args=script_args,
                )
                log(f"checkout run {run_number + 1}: {result.requests_per_second:.0f} req/s, {result.script}")
                results.append(result)
        # gunicorn has stopped gracefully: the forms still in flight when wrk stopped are done.
        made = sessions_made(stripe_url) - before_sessions
    opened = sql(
        options.database_url,
        "SELECT count(*) FROM gifts WHERE status = 'pending' AND stripe_checkout_session_id LIKE 'cs_test_bench%%'",
    )[0][0]
    gifts = sql(options.database_url, "SELECT count(*) FROM gifts")[0][0] - before_gifts

    wrk_runs = [warm, *results]
    redirected = sum(r.script["redirected"] for r in wrk_runs)
    other = sum(r.script["other"] for r in wrk_runs)
    # Every form opened one session at "Stripe" and left one pending gift holding it; wrk stops
    # with up to one form per connection in flight, answered after it stopped counting.
    in_flight = made - redirected
    ok = other == 0 and opened == made == gifts and 0 <= in_flight <= CONNECTIONS * len(wrk_runs)
    section = Section(
        title="2. Checkout creation: POST /give through the Stripe gateway",
        headers=["what", "requests/s (median)", "p50 ms", "p99 ms", "each run, requests/s"],
        rows=[
            [
                "POST /give -> 303 to Checkout",
                fmt(median([r.requests_per_second for r in results])),
                fmt(median([r.p50_ms for r in results]), 2),
                fmt(median([r.p99_ms for r in results]), 2),
                ", ".join(fmt(r.requests_per_second) for r in results),
            ]
        ],
        commands=[
            f"fake Stripe: python bench/fake_stripe.py (STRIPE_API_BASE); gunicorn --workers {WORKERS} --threads "
            f"{THREADS} --worker-class gthread wsgi:app (production config, GIVE_RATE_LIMIT='{RAISED_LIMIT}')",
            f"wrk --latency -t 1 -c {CONNECTIONS} -d {duration} -s bench/checkout.lua URL -- COOKIE CSRF_TOKEN",
        ],
        ok=ok,
    )
    section.notes = [
        f"Each request: CSRF check, form validation, donor upsert, a pending gift committed, one Checkout "
        f"Session created at the fake Stripe over HTTP, the session id committed, a 303. {redirected:,} forms "
        f"answered 303 to Checkout while wrk counted ({in_flight} more after it stopped), {other} otherwise; the "
        f"fake Stripe made {made:,} sessions; {opened:,} pending gifts hold one "
        f"({'consistent' if ok else 'INCONSISTENT'}).",
        f"Rate limit raised for this part only: GIVE_RATE_LIMIT='{RAISED_LIMIT}' (default 10 per minute per "
        "address and per email); CSRF stays on.",
        "The fake Stripe answers in well under a millisecond on loopback: real Stripe adds its own latency "
        "(hundreds of ms) to every checkout, which this measures without.",
    ]
    return section
