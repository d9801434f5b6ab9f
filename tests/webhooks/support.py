"""What the outgoing webhook tests share: a real HTTP receiver on a free port (a thread) that
checks every request's signature as the README tells receivers to, can be down (refusing
connections) or failing (503), and comes back on the same port; and endpoints made through the
admin service."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from donations.accounts.models import StaffUser
from donations.accounts.service import create_staff_user
from donations.extensions import db
from donations.webhooks import admin
from donations.webhooks.models import EventType, WebhookEndpoint
from donations.webhooks.signing import HEADER, verify
from tests.mail.support import free_port

ALL_TYPES = [str(t) for t in EventType]


@dataclass
class Received:
    event_id: str
    type: str
    body: dict[str, Any]
    signed: bool
    headers: dict[str, str]


@dataclass
class Receiver:
    """`mode`: "up" (2xx when the signature is right, 400 when not), "failing" (503) or
    "redirect" (302 elsewhere);
    `stop()` takes it down altogether (connections refused) and `start()` brings it back."""

    secret: str = ""
    mode: str = "up"
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    refused: int = 0  # requests answered 503
    hold_seconds: float = 0.0  # a slow receiver: each answer waits this long
    requests_in_hand: int = 0  # requests read and not answered yet
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.hold_seconds:
                    with receiver.lock:
                        receiver.requests_in_hand += 1
                    time.sleep(receiver.hold_seconds)
                    with receiver.lock:
                        receiver.requests_in_hand -= 1
                if receiver.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if receiver.mode == "failing":
                    with receiver.lock:
                        receiver.refused += 1
                    self._answer(503, b"down for maintenance")
                    return
                signed = verify(receiver.secret, self.headers.get(HEADER, ""), body, int(time.time()))
                payload = json.loads(body)
                with receiver.lock:
                    receiver.received.append(
                        Received(payload["id"], payload["type"], payload, signed, dict(self.headers))
                    )
                self._answer(200 if signed else 400, b"ok" if signed else b"bad signature")

            def _answer(self, status: int, text: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def delivered_ids(self) -> Counter[str]:
        """Event ids accepted (signed right, answered 2xx), with how often each came."""
        with self.lock:
            return Counter(r.event_id for r in self.received if r.signed)


def admin_user() -> StaffUser:
    user = db.session.query(StaffUser).filter_by(email="hooks-admin@example.org").one_or_none()
    if user is None:
        user = create_staff_user("hooks-admin@example.org", "admin", "correct horse battery staple")
        db.session.flush()
    return user


def make_endpoint(url: str, types: list[str] | None = None, *, enabled: bool = True) -> WebhookEndpoint:
    endpoint = admin.create_endpoint(
        admin.EndpointSettings(url=url, description="test receiver", event_types=types or ALL_TYPES, enabled=enabled),
        actor=admin_user(),
        remote_addr=None,
    )
    db.session.commit()
    return endpoint
