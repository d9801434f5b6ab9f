"""What staff do to the ledger queues its webhook events in the same transaction: an offline
gift, a donor's correction, a merge, an erasure (which also withdraws what was not sent)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from donations.extensions import db, unit_of_work
from donations.ledger import offline
from donations.ledger.donor_edits import DonorRecord
from donations.ledger.service import LedgerError
from donations.privacy.service import erase_donor
from donations.staff import service
from donations.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from tests.factories import make_donor
from tests.webhooks.support import ALL_TYPES, admin_user, make_endpoint


def bodies() -> list[dict]:
    return [json.loads(e.body) for e in db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))]


def test_an_offline_gift_is_recorded_for_receivers(app, fund):
    make_endpoint("https://hooks.example.org/a")
    entry = offline.OfflineGift(
        donor=offline.DonorDetails(name="Check Writer"),
        fund_id=fund.id,
        amount_cents=10_000,
        source="check",
        received_on=date(2026, 3, 2),
        check_number="1042",
    )
    with unit_of_work():
        gift = service.record_offline_gift(entry, admin_user(), None)
    (body,) = bodies()
    assert body["type"] == "gift.recorded"
    assert body["data"]["gift"]["id"] == gift.id
    assert (body["data"]["gift"]["paid_by"], body["data"]["gift"]["check_number"]) == ("Check", "1042")
    assert body["data"]["gift"]["received_on_local_date"] == "2026-03-02"
    assert body["data"]["donor"]["name"] == "Check Writer"
    assert body["data"]["donor"]["email"] is None, "no placeholder address"


def test_a_correction_and_a_merge_are_donor_changes(app, fund):
    make_endpoint("https://hooks.example.org/a", ["donor.changed"])
    donor = make_donor("old@example.org", name="Ann Old")
    record = DonorRecord.of(donor)
    with unit_of_work():
        service.correct_donor(donor.id, DonorRecord(**{**record.__dict__, "name": "Ann New"}), admin_user(), None)
    with pytest.raises(LedgerError), unit_of_work():  # nothing changed: nothing to tell
        service.correct_donor(donor.id, DonorRecord(**{**record.__dict__, "name": "Ann New"}), admin_user(), None)
    duplicate = make_donor("ann.new@example.org", name="Ann N.")
    with unit_of_work():
        service.merge_donors(duplicate.id, donor.id, admin_user(), None)
    first, kept, merged = bodies()
    assert first["data"]["what"] == "Corrected by staff" and first["data"]["changed"] == ["name"]
    assert first["data"]["donor"]["name"] == "Ann New"
    assert kept["data"]["donor"]["id"] == donor.id and f"#{duplicate.id}" in kept["data"]["what"]
    assert merged["data"]["donor"]["merged_into_donor_id"] == donor.id


def test_erasure_withdraws_unsent_events_and_tells_receivers(app, fund):
    make_endpoint("https://hooks.example.org/a", ALL_TYPES)
    donor = make_donor("gone@example.org", name="Gone Soon")
    other = make_donor("stays@example.org", name="Stays Here")
    with unit_of_work():
        for person in (donor, other):
            record = DonorRecord.of(person)
            service.correct_donor(person.id, DonorRecord(**{**record.__dict__, "city": "Eureka"}), admin_user(), None)
    with unit_of_work():
        erase_donor(donor.id)
    events = list(db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
    assert "gone@example.org" not in " ".join(e.body for e in events)
    assert "Gone Soon" not in " ".join(e.body for e in events)
    assert "stays@example.org" in events[1].body
    status = {d.event_id: d.status for d in db.session.scalars(select(WebhookDelivery))}
    assert status[events[0].id] == DeliveryStatus.PARKED
    assert status[events[1].id] == DeliveryStatus.PENDING
    erased = json.loads(events[2].body)
    assert erased["type"] == "donor.changed" and erased["data"]["donor"]["erased"] is True
    assert erased["data"]["donor"]["id"] == donor.id and erased["data"]["donor"]["email"] is None
