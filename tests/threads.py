"""Work run by several threads at once, as several worker processes would run it."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask

from donations.extensions import db


def run_released_together(app: Flask, tasks: list[Callable[[], object]]) -> None:
    """Each task in a thread of its own, with its own app context (so its own session and
    connection), all released at once; an error in any of them fails the calling test."""
    barrier = threading.Barrier(len(tasks))
    errors: list[BaseException] = []

    def run(task: Callable[[], object]) -> None:
        with app.app_context():
            try:
                barrier.wait()
                task()
            except BaseException as exc:  # surfaced to the test below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
