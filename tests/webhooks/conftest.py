"""Webhook fixtures: a real receiver (tests/webhooks/support.py), the app's retry settings made
small enough to see, and a default fund."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.factories import make_fund
from tests.webhooks.support import Receiver


@pytest.fixture
def receiver(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setitem(app.config, "WEBHOOK_BACKOFF_SECONDS", 60)
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 4)
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT_SECONDS", 5.0)
    found = Receiver()
    found.start()
    yield found
    found.stop()


@pytest.fixture
def fund(app: Flask):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)
