"""Reading Stripe payloads in handlers: a field of the wrong shape reads as missing, a value no
column can hold is a ValueError (the event is kept with that reason), never a server error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from donations.clock import from_timestamp
from donations.ledger.currency import newsroom_currency

MAX_CENTS = 10**12  # far above any gift, far below the BIGINT column's limit
MAX_TIMESTAMP = 2**33  # seconds: the year 2242


def field(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]..., or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if len(value) > limit or "\x00" in value:
        raise ValueError(f"a text field is longer than {limit} characters or holds a NUL")
    return value


def object_id(value: Any) -> str | None:
    """An id field that may also arrive expanded into its object."""
    return text(field(value, "id") if isinstance(value, dict) else value, 255)


def cents(value: Any) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if not 0 <= value <= MAX_CENTS:
        raise ValueError(f"amount {value} is out of range")
    return value


def timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < MAX_TIMESTAMP:
        return from_timestamp(value)
    return None


def currency(value: Any) -> str:
    """The payload's ISO currency code, lower case; the newsroom's when it names none."""
    code = text(value, 3)
    return code.lower() if code and code.isascii() and code.isalpha() and len(code) == 3 else newsroom_currency()


def metadata_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
