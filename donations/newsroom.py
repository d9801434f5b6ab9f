"""The newsroom's look: its name, logo, accent colour and a short footer line, set by admins on
/staff/look and used by every public page (gift page, embed, thank-you, error pages); and
whether the gift page offers a newsletter opt-in, with its wording (a fund may say otherwise).

One row (id 1). Read on every public page, so it is kept in-process for
GIFT_PAGE_CACHE_SECONDS (as the gift page's HTML is) and dropped at once when saved here.
The logo is kept in the database, not on disk, so that every app instance serves the same one
from our own origin; only PNG and JPEG are taken (never SVG, which can carry script), checked by
their bytes rather than their name, and small (LOGO_MAX_BYTES) to keep the gift page light.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import struct
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, g
from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from donations.clock import utcnow
from donations.extensions import Base, db
from donations.ttl_cache import TtlCache

LOGO_MAX_BYTES = 24 * 1024  # the gift page's budget is 60 KB in all (bench/page_weight.py)
LOGO_MAX_SIDE = 2000  # pixels
FOOTER_MAX = 200
NAME_MAX = 200
WORDING_MAX = 300
MIN_CONTRAST = 4.5  # WCAG AA for text: the accent is link text on white and behind white button text
DEFAULT_NEWSLETTER_WORDING = "Send me the newsletter by email. I can unsubscribe at any time."
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class LookError(ValueError):
    """A setting refused: the message says why, in words for the admin."""


class NewsroomLook(Base):
    __tablename__ = "newsroom_look"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    name: Mapped[str] = mapped_column(String(NAME_MAX), default="")  # empty: NEWSROOM_NAME
    accent: Mapped[str] = mapped_column(String(7), default="")  # "#0b4f8a"; empty: the stylesheet's
    footer: Mapped[str] = mapped_column(String(FOOTER_MAX), default="")
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_type: Mapped[str] = mapped_column(String(20), default="")  # image/png | image/jpeg
    logo_width: Mapped[int | None]
    logo_height: Mapped[int | None]
    newsletter_offered: Mapped[bool] = mapped_column(default=False)
    newsletter_wording: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class Look:
    """What templates use; `accent_css` is the one inline style a page carries (its hash is in
    the page's Content-Security-Policy)."""

    name: str
    accent: str
    footer: str
    logo_version: str  # a digest of the logo's bytes: its URL changes when the logo does
    logo_width: int | None
    logo_height: int | None
    newsletter_offered: bool
    newsletter_wording: str

    @property
    def accent_css(self) -> str:
        return f":root{{--accent:{self.accent}}}" if self.accent else ""

    @property
    def accent_css_hash(self) -> str:
        digest = hashlib.sha256(self.accent_css.encode()).digest()
        return f"'sha256-{base64.b64encode(digest).decode()}'"


_looks: TtlCache[str, Look] = TtlCache(max_entries=8)


def _row() -> NewsroomLook | None:
    return db.session.get(NewsroomLook, 1)


def _look_of(row: NewsroomLook | None) -> Look:
    if row is None:
        row = NewsroomLook(name="", accent="", footer="", logo_type="", newsletter_offered=False, newsletter_wording="")
    return Look(
        name=row.name or current_app.config["NEWSROOM_NAME"],
        accent=row.accent or "",
        footer=row.footer or "",
        logo_version=hashlib.sha256(row.logo).hexdigest()[:16] if row.logo else "",
        logo_width=row.logo_width,
        logo_height=row.logo_height,
        newsletter_offered=bool(row.newsletter_offered),
        newsletter_wording=row.newsletter_wording or DEFAULT_NEWSLETTER_WORDING,
    )


def current_look() -> Look:
    """The look, or the configured defaults while the database is unreachable: the page saying
    so (errors/unavailable.html) must still render."""
    # Once per request (or command) whatever the cache's lifetime: every template reads it.
    look: Look | None = g.get("newsroom_look")
    if look is not None:
        return look
    ttl = float(current_app.config.get("GIFT_PAGE_CACHE_SECONDS", 0))
    key = current_app.config["SQLALCHEMY_DATABASE_URI"]
    try:
        look = _looks.get_or_compute(key, ttl, lambda: _look_of(_row()))
    except DBAPIError:
        with contextlib.suppress(DBAPIError):
            db.session.rollback()
        return _look_of(None)  # not kept: the next read tries the database again
    g.newsroom_look = look
    return look


def newsletter_wording(fund_offer: str, fund_wording: str) -> str:
    """The opt-in's words on a fund's gift page, or "" when it is not offered there: the fund's
    own choice ("on", "off") or else the newsroom's; the fund's wording or else the newsroom's."""
    look = current_look()
    offered = fund_offer == "on" or (fund_offer == "" and look.newsletter_offered)
    return (fund_wording or look.newsletter_wording) if offered else ""


def logo() -> tuple[bytes, str] | None:
    row = _row()
    return (row.logo, row.logo_type) if row is not None and row.logo else None


def stored_settings() -> dict[str, object]:
    """The settings as stored (empty where a default applies), for the staff form."""
    row = _row()
    if row is None:
        return {"newsletter_wording": DEFAULT_NEWSLETTER_WORDING}
    return {
        "name": row.name,
        "accent": row.accent,
        "footer": row.footer,
        "newsletter_offered": row.newsletter_offered,
        "newsletter_wording": row.newsletter_wording or DEFAULT_NEWSLETTER_WORDING,
    }


# --- Checks ------------------------------------------------------------------------------------


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def contrast_on_white(colour: str) -> float:
    """WCAG 2 contrast ratio of `colour` ("#rrggbb") against white."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)
    return 1.05 / (luminance + 0.05)


def check_accent(value: str) -> str:
    """A valid accent ("#rrggbb", lower case) dark enough for text and white button labels, or ''."""
    value = value.strip()
    if not value:
        return ""
    if not HEX_COLOUR.match(value):
        raise LookError("Give the accent colour as # and six hexadecimal digits, like #0b4f8a.")
    ratio = contrast_on_white(value)
    if ratio < MIN_CONTRAST:
        raise LookError(
            f"The accent colour {value} is too light: its contrast with white is {ratio:.1f} to 1, and links "
            f"and button labels need at least {MIN_CONTRAST:g} to 1 to be readable. Choose a darker colour."
        )
    return value.lower()


def _png_size(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# JPEG start-of-frame markers (baseline, progressive, ...): not DHT (C4), JPG (C8) or DAC (CC).
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF_MARKERS:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


def check_logo(data: bytes) -> tuple[str, int, int]:
    """(media type, width, height) of an acceptable logo, judged by its bytes; else LookError."""
    if len(data) > LOGO_MAX_BYTES:
        raise LookError(f"The logo is {len(data) // 1024} KB; it can be at most {LOGO_MAX_BYTES // 1024} KB.")
    size, kind = _png_size(data), "image/png"
    if size is None:
        size, kind = _jpeg_size(data), "image/jpeg"
    if size is None:
        raise LookError("The logo must be a PNG or JPEG image (SVG and other files are not accepted).")
    width, height = size
    if not (0 < width <= LOGO_MAX_SIDE and 0 < height <= LOGO_MAX_SIDE):
        raise LookError(f"The logo must be at most {LOGO_MAX_SIDE} pixels on each side.")
    return kind, width, height


def _short_text(value: str, limit: int, what: str) -> str:
    value = " ".join(value.split())  # one line: no breaks or runs of spaces
    if len(value) > limit:
        raise LookError(f"The {what} can be at most {limit} characters.")
    return value


# --- Saving --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookSettings:
    name: str
    accent: str
    footer: str
    newsletter_offered: bool
    newsletter_wording: str
    logo: bytes | None = None  # a new logo; None keeps the one there is
    remove_logo: bool = False


def save_look(settings: LookSettings) -> tuple[dict[str, object], dict[str, object]]:
    """Check and store the settings in the caller's transaction; (before, after) for the audit."""
    name = _short_text(settings.name, NAME_MAX, "name")
    accent = check_accent(settings.accent)
    footer = _short_text(settings.footer, FOOTER_MAX, "footer")
    wording = _short_text(settings.newsletter_wording, WORDING_MAX, "newsletter wording")
    logo_facts = check_logo(settings.logo) if settings.logo is not None else None
    row = _row()
    if row is None:
        row = NewsroomLook(id=1, name="", accent="", footer="", logo_type="", newsletter_wording="")
        db.session.add(row)
    before = _in_words(row)
    row.name, row.accent, row.footer = name, accent, footer
    row.newsletter_offered, row.newsletter_wording = settings.newsletter_offered, wording
    if logo_facts is not None and settings.logo is not None:
        row.logo = settings.logo
        row.logo_type, row.logo_width, row.logo_height = logo_facts
    elif settings.remove_logo:
        row.logo, row.logo_type, row.logo_width, row.logo_height = None, "", None, None
    row.updated_at = utcnow()
    db.session.flush()
    _looks.clear()
    g.pop("newsroom_look", None)
    return before, _in_words(row)


def _in_words(row: NewsroomLook) -> dict[str, object]:
    """The settings as the audit log keeps them: the logo by its digest and size, not its bytes."""
    return {
        "name": row.name or "",
        "accent": row.accent or "",
        "footer": row.footer or "",
        "logo": f"{row.logo_type}, {len(row.logo)} bytes, sha256 {hashlib.sha256(row.logo).hexdigest()[:16]}"
        if row.logo
        else "",
        "newsletter_offered": bool(row.newsletter_offered),
        "newsletter_wording": row.newsletter_wording or "",
    }
