"""The audit log page, and managing staff users (admins only)."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import func, select

from donations.accounts import service as accounts
from donations.accounts.models import AuditEntry, StaffUser
from donations.extensions import db
from donations.staff import queries, service
from tests.forms import csrf_token, page_text
from tests.staff.support import fresh_address, make_staff, sign_in, sign_in_with_form


def entry_ids(client, query: str = "") -> list[int]:
    response = client.get(f"/staff/audit{query}")
    assert response.status_code == 200
    return [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", response.get_data(as_text=True))]


def test_the_audit_log_filters_by_user_and_action_and_pages(client):
    finance = make_staff("finance")
    other = make_staff("admin")
    sign_in(client, finance)
    for n in range(queries.PAGE_SIZE + 3):
        service.audit("fund.edit", actor=other, target_type="fund", target_id=n, details={"before": {"n": n}})
    service.audit("staff.create", actor="cli:root", target_type="staff_user", target_id=1)
    service.audit("gift.edit", actor=finance, target_type="gift", target_id=9, note="typo in the tribute")
    db.session.commit()
    everything = list(db.session.scalars(select(AuditEntry.id).order_by(AuditEntry.id.desc())))

    first_page = entry_ids(client)
    assert first_page == everything[: queries.PAGE_SIZE]
    page = client.get("/staff/audit").get_data(as_text=True)
    older = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    assert entry_ids(client, older.removeprefix("/staff/audit")) == everything[queries.PAGE_SIZE :]

    assert len(entry_ids(client, f"?user={finance.id}")) == 1
    assert len(entry_ids(client, "?user=none")) == 1
    assert len(entry_ids(client, f"?user={other.id}&action=fund.edit")) == queries.PAGE_SIZE
    assert entry_ids(client, "?action=staff.create") == [everything[1]]
    text = page_text(client.get("/staff/audit?action=gift.edit").get_data(as_text=True))
    assert "Reason: typo in the tribute" in text and finance.email in text


def test_bad_audit_filters_are_a_400(client):
    sign_in(client, make_staff("admin"))
    assert client.get("/staff/audit?action=no.such.action").status_code == 400
    assert client.get("/staff/audit?before=-4").status_code == 400


def add_user(client, email: str, role: str):
    token = csrf_token(client, "/staff/users")
    return client.post("/staff/users", data={"csrf_token": token, "email": email, "role": role, "name": "New Person"})


def test_an_admin_adds_a_user_with_a_one_time_password(client):
    admin = make_staff("admin")
    sign_in(client, admin)
    response = add_user(client, "New.Person@Newsroom.example", "finance")
    assert response.status_code == 200
    one_time = re.search(r'<code class="secret">([^<]+)</code>', response.get_data(as_text=True)).group(1)
    created = db.session.scalars(select(StaffUser).where(StaffUser.email == "new.person@newsroom.example")).one()
    assert created.role == "finance" and created.must_change_password
    assert one_time not in client.get("/staff/users").get_data(as_text=True)  # shown once only
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.create")).one()
    assert entry.staff_user_id == admin.id and entry.details == {"email": created.email, "role": "finance"}
    theirs = client.application.test_client()
    assert sign_in_with_form(theirs, created.email, one_time, address=fresh_address()).status_code == 302
    assert theirs.get("/staff/").location == "/staff/account/password"
    assert add_user(client, "new.person@newsroom.example", "viewer").status_code == 400  # taken


def test_changing_a_role_is_audited_and_the_last_admin_stays(client):
    admin = make_staff("admin")
    viewer = make_staff("viewer")
    sign_in(client, admin)
    token = csrf_token(client, "/staff/users")
    client.post(f"/staff/users/{viewer.id}/role", data={"csrf_token": token, "role": "finance"})
    db.session.expire_all()
    assert db.session.get(StaffUser, viewer.id).role == "finance"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.role_change")).one()
    assert entry.details == {"before": {"role": "viewer"}, "after": {"role": "finance"}}
    # The only active admin cannot demote or deactivate themself.
    client.post(f"/staff/users/{admin.id}/role", data={"csrf_token": token, "role": "viewer"})
    client.post(f"/staff/users/{admin.id}/deactivate", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(StaffUser, admin.id).role == "admin" and db.session.get(StaffUser, admin.id).active
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_a_new_password_and_a_two_factor_reset_for_someone_who_lost_theirs(client):
    admin = make_staff("admin")
    finance = make_staff("finance", totp_secret=pyotp.random_base32())
    sign_in(client, admin)
    token = csrf_token(client, "/staff/users")
    response = client.post(f"/staff/users/{finance.id}/reset-password", data={"csrf_token": token})
    one_time = re.search(r'<code class="secret">([^<]+)</code>', response.get_data(as_text=True)).group(1)
    client.post(f"/staff/users/{finance.id}/reset-two-factor", data={"csrf_token": token})
    db.session.expire_all()
    user = db.session.get(StaffUser, finance.id)
    assert user.must_change_password and user.totp_secret is None
    assert accounts.check_password(user, one_time)
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert actions == {"staff.password_reset", "staff.two_factor_reset"}


def test_reactivating_a_user(client):
    admin = make_staff("admin")
    gone = make_staff("viewer", active=False)
    sign_in(client, admin)
    token = csrf_token(client, "/staff/users")
    assert client.post(f"/staff/users/{gone.id}/activate", data={"csrf_token": token}).status_code == 303
    db.session.expire_all()
    assert db.session.get(StaffUser, gone.id).active
