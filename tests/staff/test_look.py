"""/staff/look: the newsroom's name, logo, accent colour and footer, set by admins (audited), and
used by the gift page, the embed, the thank-you and error pages (404 and 429 included)."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import zlib
from datetime import date

import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.newsroom import LOGO_MAX_BYTES, NewsroomLook, contrast_on_white
from tests.factories import make_fund
from tests.forms import csrf_token
from tests.staff.support import fresh_address, make_staff, sign_in, sign_in_with_form


def png(width: int = 120, height: int = 40) -> bytes:
    """A real (tiny, one-colour) PNG of that size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x0b\x4f\x8a" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg_header(width: int, height: int) -> bytes:
    """A JPEG's start (SOI, a JFIF APP0, then a baseline start-of-frame naming its size)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


@pytest.fixture
def fund(app):
    return make_fund("forums", name="Community Forums Reporting", is_default=True)


@pytest.fixture
def admin_client(app):
    """A staff admin's browser (the `client` fixture stays a reader's)."""
    return sign_in(app.test_client(), make_staff("admin"))


def save(client, *, logo: tuple[bytes, str] | None = None, **fields: object):
    data: dict[str, object] = {
        "csrf_token": csrf_token(client, "/staff/look"),
        "name": "",
        "accent": "",
        "footer": "",
        "newsletter_wording": "",
        **fields,
    }
    if logo is not None:
        data["logo"] = (io.BytesIO(logo[0]), logo[1])
    return client.post("/staff/look", data=data, content_type="multipart/form-data")


def style_hash(css: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


def test_an_admin_sets_the_look_and_every_public_page_shows_it(admin_client, client, fund, app):
    answer = save(
        admin_client,
        name="The Valley Ledger",
        accent="#7A1F3D",
        footer="Independent news for the valley since 1921.",
        logo=(png(), "logo.png"),
    )
    assert answer.status_code == 303
    (entry,) = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "newsroom.look"))
    assert entry.details["after"]["accent"] == "#7a1f3d"
    assert entry.details["after"]["logo"].startswith("image/png, ")
    assert entry.details["before"]["name"] == ""

    css = ":root{--accent:#7a1f3d}"
    for path, status in (("/give/forums", 200), ("/no-such-page", 404), ("/embed/forums", 200)):
        page = client.get(path)
        html = page.get_data(as_text=True)
        assert page.status_code == status
        assert f"<style>{css}</style>" in html, path
        # The one inline style is allowed by its hash, and nothing else inline is.
        assert f"style-src 'self' {style_hash(css)}" in page.headers["Content-Security-Policy"], path
        assert "The Valley Ledger" in html
    gift_page = client.get("/give/forums").get_data(as_text=True)
    assert "Independent news for the valley since 1921." in gift_page
    logo_url = re.search(r'<img class="logo" src="([^"]+)" alt="" width="120" height="40">', gift_page).group(1)
    logo = client.get(logo_url)
    assert logo.status_code == 200 and logo.mimetype == "image/png" and logo.data == png()
    assert logo.headers["X-Content-Type-Options"] == "nosniff"


def test_the_429_page_wears_the_look(admin_client, client, app):
    save(admin_client, name="The Valley Ledger", accent="#1d4d2b", footer="Newsroom footer line.")
    address = fresh_address()
    per_minute = int(app.config["STAFF_SIGNIN_LIMIT"].split(" per minute")[0])
    for n in range(per_minute):
        sign_in_with_form(client, f"guess{n}@newsroom.example", "wrong password here", address=address)
    refused = sign_in_with_form(client, "guess@newsroom.example", "wrong password here", address=address)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429
    assert "<h1>Too many attempts</h1>" in html
    assert "Please wait" in html and "Go to the gift page" in html
    assert "<style>:root{--accent:#1d4d2b}</style>" in html and "Newsroom footer line." in html
    assert style_hash(":root{--accent:#1d4d2b}") in refused.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("accent", "says"),
    [
        ("#ffcc00", "too light: its contrast with white is 1.5 to 1"),
        ("#767777", "is 4.5 to 1, and links"),  # 4.49: just under, though it rounds to 4.5
        ("blue", "# and six hexadecimal digits"),
        ("#0b4f8", "# and six hexadecimal digits"),
        ("#0b4f8a;}", "# and six hexadecimal digits"),
    ],
)
def test_an_accent_that_cannot_be_read_on_white_is_refused(admin_client, accent, says):
    answer = save(admin_client, accent=accent)
    assert answer.status_code == 400
    assert says in answer.get_data(as_text=True)
    assert db.session.scalar(select(NewsroomLook)) is None
    assert not db.session.scalars(select(AuditEntry).where(AuditEntry.action == "newsroom.look")).all()


def test_contrast_is_wcag_s():
    assert contrast_on_white("#000000") == pytest.approx(21.0)
    assert contrast_on_white("#ffffff") == pytest.approx(1.0)
    assert contrast_on_white("#767676") == pytest.approx(4.54, abs=0.01)


def test_an_accent_just_dark_enough_is_taken(admin_client):
    assert save(admin_client, accent="#767676").status_code == 303
    assert db.session.scalar(select(NewsroomLook.accent)) == "#767676"


@pytest.mark.parametrize(
    ("content", "name", "says"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.svg", "PNG or JPEG"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "logo.png", "PNG or JPEG"),  # the name is not the type
        (b"GIF89a" + b"\x00" * 20, "logo.gif", "PNG or JPEG"),
        (png(3000, 10), "huge.png", "at most 2000 pixels"),
        (png() + b"\x00" * LOGO_MAX_BYTES, "big.png", "at most 24 KB"),
    ],
)
def test_a_logo_that_is_not_a_small_png_or_jpeg_is_refused(admin_client, content, name, says):
    answer = save(admin_client, logo=(content, name))
    assert answer.status_code == 400
    assert says in answer.get_data(as_text=True)
    assert db.session.scalar(select(NewsroomLook)) is None


def test_a_jpeg_logo_is_taken_with_its_size_and_can_be_removed(admin_client, client, fund):
    assert save(admin_client, logo=(jpeg_header(300, 90), "logo.jpg")).status_code == 303
    look = db.session.scalar(select(NewsroomLook))
    assert (look.logo_type, look.logo_width, look.logo_height) == ("image/jpeg", 300, 90)
    assert 'width="300" height="90"' in client.get("/give/forums").get_data(as_text=True)
    # Saved again without a file: the logo stays; with "Remove the logo": gone.
    assert save(admin_client, name="Kept").status_code == 303
    assert db.session.scalar(select(NewsroomLook.logo_type)) == "image/jpeg"
    assert save(admin_client, remove_logo="y").status_code == 303
    assert client.get("/newsroom/logo").status_code == 404
    assert '<img class="logo"' not in client.get("/give/forums").get_data(as_text=True)


def test_without_settings_the_pages_are_as_configured(client, fund, app):
    page = client.get("/give/forums")
    html = page.get_data(as_text=True)
    assert "<style>" not in html and app.config["NEWSROOM_NAME"] in html
    assert "style-src 'self';" in page.headers["Content-Security-Policy"]
    assert client.get("/newsroom/logo").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "finance"])
def test_only_admins_set_the_look(client, role):
    sign_in(client, make_staff(role))
    assert client.get("/staff/look").status_code == 403
    token = csrf_token(client, "/staff/")  # the sign-out form's: a valid token of this session
    assert client.post("/staff/look", data={"csrf_token": token, "name": "X"}).status_code == 403
    assert db.session.scalar(select(NewsroomLook)) is None


def test_the_form_needs_its_csrf_token(admin_client):
    answer = admin_client.post("/staff/look", data={"name": "No token"})
    assert answer.status_code == 400
    assert db.session.scalar(select(NewsroomLook)) is None


def test_the_newsroom_name_from_the_look_signs_mail_reports_and_checkout(admin_client, fund, app):
    """The name set here, not only the configured one, is what donors and funders read."""
    from donations.grants.models import ProgramSettings
    from donations.grants.reports.base import ReportParams, context
    from donations.mail import render

    assert save(admin_client, name="The Valley Ledger").status_code == 303
    subject, _ = render._magic_link({"url": "https://news.example/m", "expires_at_iso": "2026-12-07T00:00:00+00:00"})
    assert subject == "Your link to manage your gifts to The Valley Ledger"
    settings = ProgramSettings(
        name="Local match", slug="local", first_day=date(2026, 1, 1), last_day=date(2026, 12, 31)
    )
    assert context(settings, 1, "summary", ReportParams()).newsroom == "The Valley Ledger"
    assert app.config["NEWSROOM_NAME"] != "The Valley Ledger"


def test_a_fault_of_ours_is_a_500_page_in_the_look(app, fund, monkeypatch):
    """An unhandled error (testing re-raises them, so this app is told not to) answers the
    styled 500 page saying the fault is ours, with nothing of the exception shown."""

    def broken() -> str:
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setitem(app.view_functions, "staff.login", broken)  # a public page, now failing
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    with app.app_context():
        db.session.add(NewsroomLook(id=1, name="The Valley Ledger", accent="#7a1f3d", footer="", logo_type=""))
        db.session.commit()
    answer = app.test_client().get("/staff/sign-in")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 500
    assert "Something went wrong on our side" in html and "The Valley Ledger" in html
    assert "<style>:root{--accent:#7a1f3d}</style>" in html
    assert "secret detail" not in html
