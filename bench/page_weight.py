"""First visit on a phone: bytes and requests for /give/<fund> and /embed/<fund>, measured in
headless Chromium (Debian's) against the app on a throwaway SQLite database. Prints the figures
beside the budgets (README "Benchmarks"); exits 1 when one is over, so a change that grows the
page shows. Bytes are as served by the development server: uncompressed (gzip in front of the
app makes them smaller still).

    .venv/bin/python bench/page_weight.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from donations import create_app
from donations.extensions import db, unit_of_work
from donations.ledger import funds

BUDGETS = {  # page: (bytes, requests)
    "/give/community-forums": (60_000, 5),
    "/embed/community-forums": (15_000, 2),
}


def measure(base: str) -> dict[str, tuple[int, int]]:
    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        for path in BUDGETS:
            context = browser.new_context(viewport={"width": 375, "height": 667})  # a first visit: no cache
            page = context.new_page()
            sizes: list[int] = []
            page.on("requestfinished", lambda request, sizes=sizes: sizes.append(_size(request)))
            page.goto(base + path, wait_until="load")
            page.wait_for_load_state("networkidle")
            figures[path] = (sum(sizes), len(sizes))
            context.close()
        browser.close()
    return figures


def _size(request) -> int:  # type: ignore[no-untyped-def]
    sizes = request.sizes()
    return int(sizes["responseBodySize"] + sizes["responseHeadersSize"])


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            "testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/weight.sqlite", "WTF_CSRF_ENABLED": True}
        )
        with app.app_context():
            upgrade()
            with unit_of_work():
                funds.create_fund(
                    slug="community-forums",
                    name="Community Forums Reporting",
                    description="Reporters at every neighborhood forum, so you know what was decided and why.",
                    is_default=True,
                )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        app.config["SERVER_NAME"] = f"127.0.0.1:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            figures = measure(f"http://127.0.0.1:{server.server_port}")
        finally:
            server.shutdown()
            with app.app_context():
                db.engine.dispose()
    over = False
    print(f"{'first visit at 375x667':<28} {'bytes':>8} {'budget':>8} {'requests':>9} {'budget':>7}")
    for path, (size, count) in figures.items():
        byte_budget, request_budget = BUDGETS[path]
        over = over or size > byte_budget or count > request_budget
        print(f"{path:<28} {size:>8,} {byte_budget:>8,} {count:>9} {request_budget:>7}")
    print("over budget" if over else "within budget")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
