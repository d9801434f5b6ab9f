"""The floor for the gift page: a bare Flask app answering "hello", under the same gunicorn
settings as the app (`gunicorn --chdir bench hello_app:app`)."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "hello"
