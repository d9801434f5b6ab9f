"""Delivering a built message: over SMTP when SMTP_URL is set, otherwise to the log and to one
.eml file per message under instance/mail/ (development).

SMTP_URL forms: `smtp://host:587` (STARTTLS when the server offers it), `smtps://host:465`
(TLS from the first byte), either with `user:password@` (percent-encoded) before the host.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from flask import Flask

log = logging.getLogger(__name__)


class MailConfigError(ValueError):
    """SMTP_URL cannot be used as given."""


class PermanentDeliveryError(Exception):
    """The server refused this message for good (5xx for its recipient or content): retrying
    the same message cannot succeed, so it is parked at once."""


class Transport(Protocol):
    def send(self, mail: EmailMessage) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def from_url(cls, url: str, timeout: float) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise MailConfigError("SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise MailConfigError("SMTP_URL has no host")
        implicit_tls = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if implicit_tls else 587)
        except ValueError as exc:
            raise MailConfigError(f"SMTP_URL has a bad port: {exc}") from None
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=implicit_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class SmtpTransport:
    """One connection, opened on the first message and reused; dropped after any error so the
    next message starts clean."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if s.implicit_tls:
            connection = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            connection.ehlo()
            if not s.implicit_tls and connection.has_extn("starttls"):
                connection.starttls(context=context)
                connection.ehlo()
            if s.username:
                if not isinstance(connection.sock, ssl.SSLSocket) and not s.is_loopback:
                    raise MailConfigError("refusing to send SMTP credentials without TLS to a remote server")
                connection.login(s.username, s.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def send(self, mail: EmailMessage) -> None:
        if self._connection is None:
            self._connection = self._connect()
        try:
            self._connection.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            # The connection stays usable (smtplib sent RSET); only this message is refused.
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(code >= 500 for code in codes):
                raise PermanentDeliveryError(f"recipient refused: {exc.recipients}") from exc
            raise
        except smtplib.SMTPDataError as exc:
            if exc.smtp_code >= 500:
                raise PermanentDeliveryError(f"message refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()


_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


class FileTransport:
    """Development without SMTP: each message is logged and written as one .eml file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, mail: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _UNSAFE_FILE_CHARACTERS.sub("_", str(mail["Message-ID"]).strip("<>")) + ".eml"
        path = self.directory / name
        path.write_bytes(bytes(mail))
        text = mail.get_body(("plain",))
        # Development only (production refuses to run the worker without SMTP_URL): the body is
        # shown for its links; the recipient is not (it is in the file, named by the Message-ID).
        log.info(
            "mail written to %s: %s\n%s",
            path,
            mail["Subject"],
            text.get_content() if text is not None else "",
        )

    def close(self) -> None:
        return None


def transport_for(app: Flask) -> Transport:
    url = app.config.get("SMTP_URL")
    if url:
        return SmtpTransport(SmtpSettings.from_url(url, float(app.config["SMTP_TIMEOUT_SECONDS"])))
    return FileTransport(Path(app.config.get("MAIL_DIR") or Path(app.instance_path) / "mail"))
