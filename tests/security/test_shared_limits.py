"""With REDIS_URL set, every app instance shares the limits: two instances (separate processes,
real Redis at 127.0.0.1:6379) together open no more checkouts than one would, and a decline
seen by one pauses the other. Keys carry a test-specific prefix and are deleted afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from config import Config
from tests.forms import extract_csrf_token
from tests.giving.support import gift_form
from tests.security.support import all_gifts, pending_gifts

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
DECLINES = "4000 0000 0000 0002"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    store = redis.Redis.from_url(REDIS_URL)
    store.ping()  # a missing Redis fails the test: it is never skipped
    prefix = f"test-h8-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(store.scan_iter(match=f"*{prefix}*"))
    if keys:
        store.delete(*keys)
    store.close()


class Instance:
    """One app process; a requests session stands in for a reader's browser."""

    def __init__(self, overrides: dict[str, object]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.security.serve_app", json.dumps(overrides)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        assert port.isdigit(), "the app process did not start"
        self.url = f"http://127.0.0.1:{port}"
        self.browser = requests.Session()

    def token(self, path: str = "/give") -> str:
        page = self.browser.get(self.url + path, timeout=10)
        assert page.status_code == 200
        return extract_csrf_token(page.text)

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        return self.browser.post(self.url + path, data=data, allow_redirects=False, timeout=10)

    def stop(self) -> None:
        self.browser.close()
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def two_instances(database_url, redis_prefix, fund) -> Iterator[tuple[Instance, Instance]]:
    overrides = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": redis_prefix,
        "GIVE_RATE_LIMIT": Config.GIVE_RATE_LIMIT,
        "DECLINE_COOLDOWN": Config.DECLINE_COOLDOWN,
    }
    instances = (Instance(overrides), Instance(overrides))
    try:
        yield instances
    finally:
        for instance in instances:
            instance.stop()


def test_fifty_checkouts_across_two_instances_share_one_limit(two_instances, redis_prefix):
    first, second = two_instances
    tokens = {first: first.token(), second: second.token()}
    statuses = []
    for n in range(50):
        instance = (first, second)[n % 2]
        statuses.append(instance.post("/give", gift_form(tokens[instance], email=f"card{n}@example.org")).status_code)
    assert statuses == [303] * 10 + [429] * 40
    assert pending_gifts() == 10  # no checkout was opened for the excess

    keys = [key.decode() for key in redis.Redis.from_url(REDIS_URL).keys(f"*{redis_prefix}*")]
    assert keys, "the limits were not kept in Redis"
    assert not [key for key in keys if "127.0.0.1" in key or "@" in key]  # keyed hashes only


def test_declines_at_one_instance_pause_checkouts_at_the_other(two_instances):
    first, second = two_instances
    opened = first.post("/give", gift_form(first.token(), email="tester@example.org"))
    assert opened.status_code == 303
    checkout = opened.headers["Location"]
    token = first.token(checkout)
    for _ in range(3):
        assert first.post(checkout, {"csrf_token": token, "card_number": DECLINES}).status_code == 400
    refused = second.post("/give", gift_form(second.token(), email="someone.else@example.org"))
    assert refused.status_code == 429
    assert "paused" in refused.text
    assert all_gifts() == 1
