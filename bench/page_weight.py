"""First visit on a phone: bytes and requests for /give/<fund> and /embed/<fund>, measured in
headless Chromium (Debian's) against the app on a throwaway SQLite database. Prints the figures
beside the budgets (README "Benchmarks"), the gift page twice: as installed, and with the
newsroom's look set (accent, footer and a logo of the largest size /staff/look takes). Exits 1
when one is over, so a change that grows the page shows. Bytes are as served by the development
server: uncompressed (gzip in front of the app makes them smaller still).

    .venv/bin/python bench/page_weight.py
"""

from __future__ import annotations

import struct
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from donations import create_app
from donations.extensions import db, unit_of_work
from donations.ledger import funds
from donations.newsroom import LOGO_MAX_BYTES, LookSettings, save_look

WITH_LOOK = "/give/... with its 24 KB logo"  # the gift page again, the newsroom's look set (/staff/look)
BUDGETS = {  # page: (bytes, requests)
    "/give/community-forums": (60_000, 5),
    "/embed/community-forums": (15_000, 2),
}


def measure(base: str, paths: Iterable[str] = BUDGETS) -> dict[str, tuple[int, int]]:
    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        for path in paths:
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


def largest_logo() -> bytes:
    """A PNG logo of the largest size /staff/look takes (LOGO_MAX_BYTES), padded with a text chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 240, 80, 8, 2, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + b"\x0b\x4f\x8a" * 240 for _ in range(80))))
    end = chunk(b"IEND", b"")
    used = 8 + len(header) + len(pixels) + len(end) + 12 + len(b"Comment\x00")
    padding = chunk(b"tEXt", b"Comment\x00" + b"x" * (LOGO_MAX_BYTES - used))
    return b"\x89PNG\r\n\x1a\n" + header + pixels + padding + end


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
            base = f"http://127.0.0.1:{server.server_port}"
            figures = measure(base)
            # The same page once the newsroom has its look: accent, footer and the largest logo.
            with app.app_context(), unit_of_work():
                settings = LookSettings(
                    name="The Local Ledger",
                    accent="#7a1f3d",
                    footer="Independent news for the valley since 1921.",
                    newsletter_offered=True,
                    newsletter_wording="Send me the weekly newsletter.",
                    logo=largest_logo(),
                )
                save_look(settings)
            (gift_page,) = [path for path in BUDGETS if path.startswith("/give")]
            figures[WITH_LOOK] = measure(base, [gift_page])[gift_page]
        finally:
            server.shutdown()
            with app.app_context():
                db.engine.dispose()
    over = False
    print(f"{'first visit at 375x667':<28} {'bytes':>8} {'budget':>8} {'requests':>9} {'budget':>7}")
    for path, (size, count) in figures.items():
        byte_budget, request_budget = BUDGETS.get(path) or BUDGETS["/give/community-forums"]
        over = over or size > byte_budget or count > request_budget
        print(f"{path:<28} {size:>8,} {byte_budget:>8,} {count:>9} {request_budget:>7}")
    print("over budget" if over else "within budget")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
