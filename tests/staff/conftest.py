"""Staff tests use a client whose every request runs in an app context of its own, as in
production. (The suite's tests run inside one app context; a request would otherwise share its
`g`, where Flask-Login keeps the signed-in user and Flask-WTF the CSRF token, with the test and
with every other client of the test.)"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse


class IsolatedClient(FlaskClient):
    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        with self.application.app_context():
            return super().open(*args, **kwargs)


def new_client(app: Flask) -> IsolatedClient:
    return IsolatedClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def client(app: Flask) -> IsolatedClient:
    return new_client(app)
