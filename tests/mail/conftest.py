"""Mail fixtures: a real SMTP server (tests/mail/support.py) with the app pointed at it, and a
certificate for `localhost`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.mail.support import SmtpServer


@pytest.fixture
def smtp(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    server = SmtpServer(auth_require_tls=False)
    server.start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    monkeypatch.setitem(app.config, "RECEIPTS_BACKOFF_SECONDS", 60)
    monkeypatch.setitem(app.config, "RECEIPTS_MAX_ATTEMPTS", 4)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def localhost_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for `localhost` (the test trusts it through SSL_CERT_FILE)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
