"""A small in-process cache whose entries expire: for figures that may be a minute old (progress
bars, the gift page's HTML) and are asked for on every public page view.

Each process keeps its own; the time to live is given on each write, so that a configuration
(and a test) can change it, and 0 keeps nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, max_entries: int = 128) -> None:
        self._entries: dict[K, tuple[float, V]] = {}  # key -> (expires at, on time.monotonic(), value)
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, key: K, value: V, seconds: float) -> None:
        if seconds <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self._max_entries and key not in self._entries:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self._max_entries:  # still full of live entries: start afresh
                    self._entries.clear()
            self._entries[key] = (now + seconds, value)

    def get_or_compute(self, key: K, seconds: float, compute: Callable[[], V]) -> V:
        """The kept value, or `compute()` kept for `seconds`. Two threads may both compute a
        missing value: the figures are cheap enough to compute twice, not on every view."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value, seconds)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
