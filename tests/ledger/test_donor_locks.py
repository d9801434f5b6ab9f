"""Row locks between merges and new money (PostgreSQL): a merge locks its two donors in id
order, so merges of a pair in opposite directions cannot deadlock; recording money for a donor
waits for a merge of that donor under way and then follows it; and two gifts filling in the same
donor's blank details at once do not deadlock each other.

Another connection plays the other transaction; `wait_for_lock_waiter` sees through
pg_stat_activity when the code under test is blocked on a row lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import OperationalError

from donations.accounts.models import StaffUser
from donations.extensions import db, unit_of_work
from donations.ledger import service
from donations.ledger.donors import MergeError
from donations.ledger.models import Donor
from donations.staff.service import merge_donors
from tests.factories import make_donor
from tests.staff.support import make_staff

pytestmark = pytest.mark.postgresql_only


def lock_waiters() -> int:
    with db.engine.connect() as probe:
        return probe.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


def wait_for_lock_waiter(seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if lock_waiters() > 0:
            return True
        time.sleep(0.02)
    return False


@contextmanager
def other_transaction() -> Iterator[Connection]:
    connection = db.engine.connect()
    connection.begin()
    try:
        yield connection
    finally:
        connection.rollback()
        connection.close()


def in_thread(app: Flask, work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `work` in its own app context (its own session and connection)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        with app.app_context():
            try:
                outcome["value"] = work()
            except Exception as exc:
                outcome["error"] = exc
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def lock(connection: Connection, donor_id: int, *, nowait: bool = False) -> None:
    connection.execute(select(Donor.id).where(Donor.id == donor_id).with_for_update(nowait=nowait))


def test_a_merge_locks_the_lower_donor_id_first(app):
    low, high = make_donor("low@example.org"), make_donor("high@example.org")
    admin_id = make_staff("admin").id

    def merge_high_into_low() -> int:
        actor = db.session.get(StaffUser, admin_id)
        with unit_of_work():  # the view's transaction: committed at its end
            return merge_donors(high.id, low.id, actor, None).kept_id

    with other_transaction() as other:
        lock(other, low.id)
        thread, outcome = in_thread(app, merge_high_into_low)
        assert wait_for_lock_waiter(), "the merge should wait for the lower id's lock"
        # The merge holds nothing yet: the higher id is free. Had it locked the duplicate (the
        # higher id) first, a merge the other way round would now deadlock with it.
        try:
            lock(other, high.id, nowait=True)
        except OperationalError:
            pytest.fail("the merge locked the higher id before the lower one")
    thread.join(timeout=10)
    assert not thread.is_alive() and outcome == {"value": low.id}
    db.session.expire_all()
    assert db.session.get(Donor, high.id).merged_into_id == low.id


def test_merges_of_a_pair_in_both_directions_at_once_do_not_deadlock(app):
    first, second = make_donor("first@example.org"), make_donor("second@example.org")
    admin_id = make_staff("admin").id
    barrier = threading.Barrier(2)

    def merge(duplicate_id: int, kept_id: int) -> Callable[[], int]:
        def work() -> int:
            actor = db.session.get(StaffUser, admin_id)
            barrier.wait()
            with unit_of_work():
                return merge_donors(duplicate_id, kept_id, actor, None).kept_id

        return work

    runs = [in_thread(app, merge(first.id, second.id)), in_thread(app, merge(second.id, first.id))]
    for thread, _ in runs:
        thread.join(timeout=20)
    outcomes = [outcome for _, outcome in runs]
    # One merge wins; the other then finds its donor already merged (a clear refusal, not a deadlock).
    assert sorted("value" in outcome for outcome in outcomes) == [False, True]
    (refused,) = [outcome["error"] for outcome in outcomes if "error" in outcome]
    assert isinstance(refused, MergeError) and "merged into" in str(refused), refused


def test_new_money_waits_for_a_merge_under_way_and_lands_on_the_donor_kept(app):
    duplicate, kept = make_donor("dup@example.org"), make_donor("kept@example.org")

    def find() -> int:
        donor = service.find_or_create_donor("DUP@example.org", name="Dee")
        db.session.commit()
        return donor.id

    with other_transaction() as merging:
        lock(merging, duplicate.id)  # as a merge does, first thing
        thread, outcome = in_thread(app, find)
        waited = wait_for_lock_waiter()
        merging.execute(update(Donor).where(Donor.id == duplicate.id).values(merged_into_id=kept.id))
        merging.commit()
    thread.join(timeout=10)
    assert waited, "recording money should wait for the merge"
    assert outcome == {"value": kept.id}


def test_two_gifts_filling_in_one_donors_details_at_once_do_not_deadlock(app):
    donor = make_donor("blank@example.org")  # no name yet
    barrier = threading.Barrier(2)

    def fill(name: str) -> Callable[[], str]:
        def work() -> str:
            found = service.find_or_create_donor("blank@example.org", name=name)
            barrier.wait()  # both hold their lock on the donor before either writes
            db.session.commit()
            return found.name

        return work

    runs = [in_thread(app, fill("Pat")), in_thread(app, fill("Sam"))]
    for thread, _ in runs:
        thread.join(timeout=20)
    assert [sorted(outcome) for _, outcome in runs] == [["value"], ["value"]], [o for _, o in runs]
    db.session.expire_all()
    assert db.session.get(Donor, donor.id).name in ("Pat", "Sam")
