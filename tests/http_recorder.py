"""A local HTTP server, in a thread, that records the requests it receives and answers as told:
a stand-in for Stripe's API (Stripe cannot be reached from tests).

    with HTTPRecorder() as api:
        api.route("POST", "/v1/checkout/sessions", json={"id": "cs_1", "url": "https://..."})
        api.route("GET", "/v1/events", Answer(status=500, json=stripe_error("boom")))
        api.route("POST", "/v1/refunds", [Answer(status=500), Answer(json={...})])  # in turn
        api.route("GET", "/v1/balance", lambda request: Answer(json={...}))  # computed
        ... point the app at api.url (STRIPE_API_BASE) ...
        request = api.requests_to("POST", "/v1/checkout/sessions")[0]
        request.headers["Idempotency-Key"], request.form["line_items[0][price_data][unit_amount]"]

Routes are (method, path) without the query string; `route_prefix` answers every path under a
prefix (`/v1/products/` for `/v1/products/prod_1`) not routed exactly. A list of answers is served in turn, the
last one repeating. `delay` holds the answer back, e.g. past the client's time-out; a request is
recorded as soon as it arrives, so one the client gave up on is still there. Unrouted requests
get Stripe's 404 error shape.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from werkzeug.datastructures import Headers


@dataclass(frozen=True)
class Answer:
    status: int = 200
    json: Any = None
    body: bytes | None = None  # raw body, when not JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: Headers  # case-insensitive
    body: bytes
    form: dict[str, str]  # the body, form-decoded (Stripe's v1 API encoding), keys as sent

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def nested_form(self) -> dict[str, Any]:
        """The form with Stripe's bracketed keys unflattened:
        `line_items[0][price_data][unit_amount]` -> {"line_items": [{"price_data": {...}}]}."""
        return unflatten(self.form)


Responder = Answer | list[Answer] | Callable[[RecordedRequest], Answer]


def stripe_error(message: str, error_type: str = "api_error", code: str | None = None) -> dict[str, Any]:
    """The body Stripe sends with an error status."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code:
        error["code"] = code
    return {"error": error}


_KEY_PART = re.compile(r"\[([^\]]*)\]")


def unflatten(flat: dict[str, str]) -> dict[str, Any]:
    """Rebuild nested dicts and lists from `a[b][0][c]=v` keys; numeric parts index lists."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        head = key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(key[len(head) :])]
        node: Any = root
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None:
                    node[index] = container
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            index = int(last)
            while len(node) <= index:
                node.append(None)
            node[index] = value
        else:
            node[last] = value
    return root


class HTTPRecorder:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[RecordedRequest] = []
        self._routes: dict[tuple[str, str], Responder] = {}
        self._prefix_routes: dict[tuple[str, str], Callable[[RecordedRequest], Answer]] = {}
        self._served: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------
    def route(
        self,
        method: str,
        path: str,
        answer: Responder | None = None,
        *,
        status: int = 200,
        json: Any = None,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer `method path` with `answer`, or with an Answer built from the keywords."""
        if answer is None:
            answer = Answer(status=status, json=json, delay=delay, headers=headers or {})
        with self._lock:
            self._routes[(method.upper(), path)] = answer
            self._served[(method.upper(), path)] = 0

    def route_prefix(self, method: str, prefix: str, answer: Callable[[RecordedRequest], Answer]) -> None:
        """Answer `method` on every path starting with `prefix` (no exact route) with `answer`."""
        with self._lock:
            self._prefix_routes[(method.upper(), prefix)] = answer

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def clear(self) -> None:
        """Forget the recorded requests (routes stay)."""
        with self._lock:
            self.requests.clear()

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the recorder is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HTTPRecorder:
        recorder = self

        class Handler(_Handler):
            owner = recorder

        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a handler still sleeping must not hold up stop()
        # A short poll interval: stop() returns as soon as the serving loop next looks.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="http-recorder", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that are holding their answer back
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> HTTPRecorder:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------------
    def _record_and_choose(self, request: RecordedRequest) -> Answer:
        key = (request.method, request.path)
        with self._lock:
            self.requests.append(request)
            responder = self._routes.get(key)
            if responder is None:
                responder = next(
                    (
                        answer
                        for (method, prefix), answer in self._prefix_routes.items()
                        if method == request.method and request.path.startswith(prefix)
                    ),
                    None,
                )
            turn = self._served.get(key, 0)
            self._served[key] = turn + 1
        if responder is None:
            message = f"Unrecognized request URL ({request.method}: {request.path})."
            return Answer(status=404, json=stripe_error(message, "invalid_request_error"))
        if isinstance(responder, Answer):
            return responder
        if isinstance(responder, list):
            return responder[min(turn, len(responder) - 1)]
        return responder(request)


class _Handler(BaseHTTPRequestHandler):
    owner: HTTPRecorder

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        is_form = (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded")
        request = RecordedRequest(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=Headers(list(self.headers.items())),
            body=body,
            form=dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) if is_form else {},
        )
        answer = self.owner._record_and_choose(request)
        if answer.delay and self.owner._stopping.wait(answer.delay):
            return  # the recorder is stopping: drop the connection
        payload = (
            answer.body
            if answer.body is not None
            else json.dumps(answer.json if answer.json is not None else {}).encode()
        )
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json" if answer.body is None else "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", f"req_recorded_{len(self.owner.requests)}")
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a time-out test): nothing to answer

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `requests`, not a log
