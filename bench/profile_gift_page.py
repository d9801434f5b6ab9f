"""In-process cost of the gift page: CPU ms per GET /give against the bare Flask app of part 1.

Both WSGI apps are called directly with a prepared request (no test client, no server), so the
figures are the apps' own work; part 1 adds gunicorn's. The app runs in its production
configuration on the given PostgreSQL database, which is emptied and given its schema and a
default fund first. A first visit each time (no cookie): a new session and CSRF token.

    .venv/bin/python bench/profile_gift_page.py postgresql+psycopg://postgres@127.0.0.1:5432/DB \
        [-n 3000] [--profile FILE]

The database is emptied: never point it at one that matters.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from common import app_env, ensure_database, prepare_app_database  # noqa: E402

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def call(app: WSGIApp, environ: dict[str, Any]) -> str:
    status: list[str] = []
    body = app(dict(environ), lambda s, headers, exc_info=None: status.append(s))
    b"".join(body)
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return status[0]


def cpu_ms(app: WSGIApp, environ: dict[str, Any], requests: int) -> float:
    for _ in range(200):  # warm-up: the page cache filled, the pool open
        assert call(app, environ).startswith("200"), "the page did not answer 200"
    started = time.process_time()
    for _ in range(requests):
        call(app, environ)
    return (time.process_time() - started) / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("-n", "--requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of one more pass of GET /give here")
    args = parser.parse_args()

    ensure_database(args.database_url)
    prepare_app_database(args.database_url)
    os.environ.update(app_env(args.database_url))
    import hello_app
    from werkzeug.test import EnvironBuilder

    from donations import create_app

    app = create_app("production")

    def environ(path: str) -> dict[str, Any]:
        return EnvironBuilder(path=path, base_url="https://give.example.org").get_environ()

    print("run  hello ms  GET /give ms  hello/give")
    for run in range(1, args.runs + 1):
        hello = cpu_ms(hello_app.app, environ("/"), args.requests)
        give = cpu_ms(app, environ("/give"), args.requests)
        print(f"{run:>3}  {hello:8.3f}  {give:12.3f}  {hello / give:10.2f}")
    if args.profile:
        profile = cProfile.Profile()
        give_environ = environ("/give")
        profile.runcall(lambda: [call(app, give_environ) for _ in range(args.requests)])
        profile.dump_stats(args.profile)
        print(f"profile: {args.profile}")


if __name__ == "__main__":
    main()
