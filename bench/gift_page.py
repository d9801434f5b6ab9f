"""Part 1: GET /give (production config, Stripe gateway, PostgreSQL, a seeded fund) against a bare
Flask "hello" app, both under the same gunicorn settings, measured alternately in one run."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from common import (
    BENCH,
    THREADS,
    WORKERS,
    Options,
    Section,
    WrkResult,
    app_env,
    fmt,
    gunicorn,
    log,
    median,
    wrk,
)

CONNECTIONS = 8
SERVERS = {
    "hello": 'bare Flask "hello"',
    "give": "GET /give",
    "uncached": "GET /give, page cache off (before)",
}
TARGET_RATIO = 0.7


@dataclass
class Measured:
    """One run of one server: its slices taken together."""

    requests_per_second: float  # all the slices' requests over all their time
    p50_ms: float  # the median of the slices' medians
    p99_ms: float  # the worst of the slices' 99th percentiles


def run(options: Options) -> Section:
    # Each run is made of short slices, the servers taking turns slice by slice: the machine's
    # load, when shared, changes by the second, and then changes for all of them alike.
    slices, slice_duration, warmup = (1, "1s", "1s") if options.quick else (5, "2s", "3s")
    env = app_env(options.database_url)
    # The same app with its page cache off: what every request cost before the cache.
    uncached_env = {**env, "GIFT_PAGE_CACHE_SECONDS": "0"}
    results: dict[str, list[Measured]] = {name: [] for name in SERVERS}
    with (
        gunicorn("hello", "hello_app:app", env, options.out_dir, ready_path="/", pythonpath=str(BENCH)) as hello,
        gunicorn("app-give", "wsgi:app", env, options.out_dir) as app,
        gunicorn("app-give-uncached", "wsgi:app", uncached_env, options.out_dir) as uncached,
    ):
        targets = {"hello": hello.url + "/", "give": app.url + "/give", "uncached": uncached.url + "/give"}
        for name in ("give", "uncached"):
            with urllib.request.urlopen(targets[name]) as response:
                page = response.read().decode()
            if 'name="csrf_token"' not in page or 'name="amount_choice"' not in page:
                raise RuntimeError("GET /give did not render the gift form")
        for url in targets.values():  # the workers import, connect and compile templates first
            wrk(url, duration=warmup, connections=CONNECTIONS)
        names = list(SERVERS)
        for run_number in range(options.runs):
            taken: dict[str, list[WrkResult]] = {name: [] for name in SERVERS}
            for slice_number in range(slices):
                turn = (run_number * slices + slice_number) % len(names)
                for name in names[turn:] + names[:turn]:
                    result = wrk(targets[name], duration=slice_duration, connections=CONNECTIONS)
                    if result.errors:
                        raise RuntimeError(f"{name}: {result.errors} errors or non-2xx answers:\n{result.output}")
                    taken[name].append(result)
            for name, parts in taken.items():
                results[name].append(
                    Measured(
                        requests_per_second=sum(r.requests for r in parts) / sum(r.duration_s for r in parts),
                        p50_ms=median([r.p50_ms for r in parts]),
                        p99_ms=max(r.p99_ms for r in parts),
                    )
                )
            log(
                f"gift page run {run_number + 1}: "
                + ", ".join(f"{name} {results[name][-1].requests_per_second:.0f} req/s" for name in names)
            )

    rows = []
    for name in SERVERS:
        runs = results[name]
        rows.append(
            [
                SERVERS[name],
                fmt(median([r.requests_per_second for r in runs])),
                fmt(median([r.p50_ms for r in runs]), 2),
                fmt(median([r.p99_ms for r in runs]), 2),
                ", ".join(fmt(r.requests_per_second) for r in runs),
            ]
        )
    ratio = median([r.requests_per_second for r in results["give"]]) / median(
        [r.requests_per_second for r in results["hello"]]
    )
    per_run = [
        g.requests_per_second / h.requests_per_second for g, h in zip(results["give"], results["hello"], strict=True)
    ]
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    section = Section(
        title="1. Gift page: GET /give vs a bare Flask app",
        headers=["server", "requests/s (median)", "p50 ms", "p99 ms (worst slice)", "each run, requests/s"],
        rows=rows,
        commands=[
            f"gunicorn --workers {WORKERS} --threads {THREADS} --worker-class gthread wsgi:app   "
            "(DONATIONS_CONFIG=production, Stripe gateway, PostgreSQL)",
            f"gunicorn --workers {WORKERS} --threads {THREADS} --worker-class gthread hello_app:app",
            f"wrk --latency -t 1 -c {CONNECTIONS} -d {slice_duration} URL, {slices} times per run, the servers "
            f"taking turns (after a {warmup} warm-up of each)",
        ],
    )
    before = median([r.requests_per_second for r in results["uncached"]]) / median(
        [r.requests_per_second for r in results["hello"]]
    )
    section.notes = [
        f"Ratio GET /give / hello = **{ratio:.2f}** (target >= {TARGET_RATIO}: {verdict}); "
        f"per run: {', '.join(f'{x:.2f}' for x in per_run)}. With the page cache off: {before:.2f}.",
        "The page is the default fund's (with its progress bar), each answer with a new session cookie and "
        "CSRF token (wrk sends no cookie): a first visit. The page cache keeps the rendered form for "
        "GIFT_PAGE_CACHE_SECONDS (60) per worker and fund; each answer still gets its own token.",
    ]
    return section
