"""The production files hold together. The suite builds no image (that needs a container engine
and a base image: deploy/check-image.sh does it, README's Deployment section says how it was
run): compose.yaml is parsed and checked, the Dockerfile, Procfile, systemd units and the
production lock are read for what they must say, and the image check script is parsed."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

from config import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = version
    return pins


def test_compose_file_parses_and_runs_app_worker_postgres_redis_and_a_mail_catcher():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"app", "worker", "postgres", "redis", "mailpit", "migrate"} <= set(services)
    app, worker = services["app"], services["worker"]
    assert app["image"] == worker["image"] == "donations:latest" and app["build"] == "."
    assert worker["entrypoint"] + worker["command"] == ["flask", "--app", "wsgi", "worker"]
    assert worker["stop_signal"] == "SIGTERM"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for service in (app, worker):
        env = service["environment"]
        assert env["WORKER_IN_APP"] == "false" and env["DATABASE_URL"].startswith("postgresql://")
        assert env["REDIS_URL"] == "redis://redis:6379/0" and "mailpit:1025" in env["SMTP_URL"]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # Every variable handed to the app is one it reads.
    handed = set(app["environment"]) - {"DATABASE_URL"}
    assert handed <= set(ENVIRONMENT) | {"DONATIONS_CONFIG"}, handed - set(ENVIRONMENT)
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"


def test_dockerfile_is_slim_non_root_locked_and_runs_gunicorn():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "pip install --only-binary=:all: -r requirements-production.lock" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] != "root"
    assert 'ENTRYPOINT ["gunicorn"]' in text and "wsgi:app" in text
    for copied in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), path


def test_procfile_and_systemd_units_run_the_web_app_and_the_worker():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert procfile["web"].startswith("gunicorn") and procfile["worker"] == "flask --app wsgi worker"
    web = (ROOT / "deploy/systemd/donations-web.service").read_text()
    worker = (ROOT / "deploy/systemd/donations-worker.service").read_text()
    assert "gunicorn --config gunicorn.conf.py wsgi:app" in web and "KillSignal=SIGTERM" in worker
    assert "ExecStart=/srv/donations/.venv/bin/flask --app wsgi worker" in worker
    for unit in (web, worker):
        assert "User=donations" in unit and "EnvironmentFile=/etc/donations/env" in unit


def test_the_production_lock_pins_every_run_time_requirement_as_the_full_lock_does():
    production, full = _pins(ROOT / "requirements-production.lock"), _pins(ROOT / "requirements.lock")
    assert all(full.get(name) == version for name, version in production.items())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed: set[str] = set()

    def walk(requirement: Requirement) -> None:
        if _name(requirement.name) in needed:
            return
        needed.add(_name(requirement.name))
        for text in distribution(requirement.name).requires or []:
            child = Requirement(text)
            for extra in ("", *requirement.extras):
                if child.marker is None or child.marker.evaluate({**default_environment(), "extra": extra}):
                    walk(child)
                    break

    for text in project["dependencies"]:
        walk(Requirement(text))
    assert needed <= set(production), needed - set(production)
    assert not {"pytest", "playwright", "mypy", "ruff"} & set(production)


def test_the_image_check_script_is_valid_bash_and_runnable():
    script = ROOT / "deploy/check-image.sh"
    assert os.access(script, os.X_OK)
    parsed = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert parsed.returncode == 0, parsed.stderr
    # Without a database it refuses at once, saying what to set, before building anything.
    refused = subprocess.run(
        [str(script)], capture_output=True, text=True, check=False, env={"PATH": os.environ["PATH"]}
    )
    assert refused.returncode != 0
    assert "set DATABASE_URL" in refused.stderr
