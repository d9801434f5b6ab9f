"""What the mail tests share: a real SMTP server (aiosmtpd) on a free port that records what it
accepts, and signing in through the real sign-in form."""

from __future__ import annotations

import itertools
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from flask import url_for
from flask.testing import FlaskClient

from donations.accounts.models import StaffUser
from donations.accounts.service import create_staff_user
from donations.extensions import db
from tests.forms import extract_csrf_token

_addresses = itertools.count(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Mailbox:
    """What the SMTP server accepted, and the recipients it refuses."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        parsed = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        with self.lock:
            self.messages.append(parsed)
        return "250 OK"

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"s3cret/pw")
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    def by_message_id(self) -> Counter[str]:
        with self.lock:
            return Counter(str(message["Message-ID"]) for message in self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class SmtpServer:
    """Start, stop and restart (on the same port) a real SMTP server."""

    def __init__(self, **controller_options: Any) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self.options = controller_options
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.mailbox.authenticate,
            **self.options,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def sign_in(client: FlaskClient, role: str) -> StaffUser:
    """Sign in through the real sign-in form as a new staff user with this role."""
    email = f"{role}{next(_addresses)}@example.org"
    user = create_staff_user(email, role, "correct horse battery staple")
    db.session.commit()
    address = {"REMOTE_ADDR": f"198.51.100.{next(_addresses) % 250}"}  # each its own sign-in rate limit
    token = extract_csrf_token(client.get(url_for("staff.login"), environ_base=address).get_data(as_text=True))
    response = client.post(
        url_for("staff.login"),
        data={"email": email, "password": "correct horse battery staple", "csrf_token": token},
        environ_base=address,
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return user
