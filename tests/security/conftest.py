"""Fixtures for the security tests: a fund to give to, and the production limits (the suite's
shared test config loosens them so that other tests may post many gifts)."""

from __future__ import annotations

import pytest

from config import Config
from tests.factories import make_fund


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


@pytest.fixture
def strict_limits(app, monkeypatch):
    """The limits a deployment gets by default."""
    monkeypatch.setitem(app.config, "GIVE_RATE_LIMIT", Config.GIVE_RATE_LIMIT)
    monkeypatch.setitem(app.config, "DECLINE_COOLDOWN", Config.DECLINE_COOLDOWN)
    return app.config
