"""A fast, threaded stand-in for Stripe's API on loopback: POST /v1/checkout/sessions answers a
Checkout Session with an id and a url, as Stripe does; GET /count says how many it made.

    python bench/fake_stripe.py --port 8111     (prints "ready" when listening)
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ids = itertools.count(1)
_lock = threading.Lock()
_made = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Stripe's API
    # Headers and body go out as two writes: with Nagle's algorithm on, the body would wait for
    # the client's delayed ACK (40 ms) on every request of a kept-alive connection.
    disable_nagle_algorithm = True

    def _answer(self, status: int, payload: dict[str, object]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", "req_bench")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        global _made
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.split("?")[0] != "/v1/checkout/sessions":
            self._answer(404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}})
            return
        with _lock:
            _made += 1
        session_id = f"cs_test_bench{next(_ids):010d}"
        self._answer(
            200,
            {
                "id": session_id,
                "object": "checkout.session",
                "livemode": False,
                "status": "open",
                "payment_status": "unpaid",
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            },
        )

    def do_GET(self) -> None:
        if self.path == "/count":
            self._answer(200, {"checkout_sessions": _made})
        else:
            self._answer(404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}})

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
