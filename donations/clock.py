"""Time helpers: everything is stored in UTC and reported in the newsroom's zone."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app


def utcnow() -> datetime:
    return datetime.now(UTC)


def newsroom_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["NEWSROOM_TIMEZONE"])


def from_timestamp(seconds: int | float) -> datetime:
    """A Stripe timestamp (seconds since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def local_date(moment: datetime, zone: ZoneInfo | None = None) -> date:
    return moment.astimezone(zone or newsroom_zone()).date()


def local_time_text(moment: datetime | None) -> str:
    """A stored UTC time as the newsroom's local time, for people; a dash when there is none."""
    if moment is None:
        return "—"
    return moment.astimezone(newsroom_zone()).strftime("%Y-%m-%d %H:%M %Z")


def local_day_bounds(first: date, last: date, zone: ZoneInfo | None = None) -> tuple[datetime, datetime]:
    """UTC [start, end) covering local dates first..last inclusive, right across DST changes."""
    zone = zone or newsroom_zone()
    start = datetime.combine(first, time.min, zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, zone).astimezone(UTC)
    return start, end


def wait_in_words(seconds: int) -> str:
    """'about 40 seconds', 'about 1 minute', 'about 2 hours': how long a refused reader waits."""
    if seconds < 60:
        amount, unit = max(seconds, 1), "second"
    elif seconds < 3600:
        amount, unit = math.ceil(seconds / 60), "minute"
    else:
        amount, unit = math.ceil(seconds / 3600), "hour"
    return f"about {amount} {unit}{'' if amount == 1 else 's'}"
