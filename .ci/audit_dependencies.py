"""pip-audit of requirements.lock, against whichever vulnerability service answers.

pip-audit asks PyPI's JSON API (its default) or OSV which releases have known vulnerabilities.
When neither can be reached (a network that only lets package downloads through, as on this
project's build machines), PyPI's project JSON (/pypi/NAME/json) may still answer: it lists the
known vulnerabilities of each project's latest release. So every pin that IS the latest release
is checked there (a vulnerability fails the audit), and every pin that is not is named as
unchecked. With no service at all, nothing was audited: this says so plainly and exits 1, or,
with AUDIT_OFFLINE=warn (how `make test` runs it), prints the same warning and exits 0. It never
reports success for an audit that did not happen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
OSV_QUERY = b'{"package": {"name": "pip", "ecosystem": "PyPI"}, "version": "23.0"}'


def services() -> list[tuple[str, str, bytes | None]]:
    """(pip-audit's name for a service, a request that answers 200 where pip-audit can use it)."""
    name, version = next(line.strip() for line in LOCK.open() if "==" in line).split("==")
    return [
        # pip-audit asks for each pinned release: /pypi/NAME/VERSION/json (not /pypi/NAME/json).
        ("pypi", f"https://pypi.org/pypi/{name}/{version}/json", None),
        ("osv", "https://api.osv.dev/v1/query", OSV_QUERY),
    ]


def answers(url: str, body: bytes | None) -> bool:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310  # nosec B310 - fixed https URLs
            return response.status == 200
    except OSError:
        return False


def pins() -> list[tuple[str, str]]:
    return [
        tuple(line.split(";")[0].strip().split("==", 1))  # type: ignore[misc]
        for line in LOCK.read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    ]


def latest_release_report(name: str) -> dict | None:
    url = f"https://pypi.org/pypi/{name}/json"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # nosec B310 - fixed https URL
            return json.load(response)
    except (OSError, ValueError):
        return None


def audit_latest_releases() -> int | None:
    """The fallback described above. None: PyPI's project JSON does not answer either."""
    locked = pins()
    with ThreadPoolExecutor(max_workers=8) as pool:
        reports = list(pool.map(latest_release_report, [name for name, _ in locked]))
    if all(report is None for report in reports):
        return None
    vulnerable, unchecked = [], []
    for (name, version), report in zip(locked, reports, strict=True):
        if report is None or report["info"]["version"] != version:
            unchecked.append(f"{name}=={version}")
            continue
        for vulnerability in report.get("vulnerabilities") or []:
            if not vulnerability.get("withdrawn"):
                vulnerable.append(f"{name}=={version}: {vulnerability.get('id')} {vulnerability.get('aliases', [])}")
    checked = len(locked) - len(unchecked)
    print(
        f"dependency audit (PyPI's latest-release data): {checked} of {len(locked)} pins checked, "
        f"{len(vulnerable)} known vulnerabilities"
    )
    for line in vulnerable:
        print(f"  VULNERABLE {line}")
    if unchecked:
        print(f"  not checked (not the latest release, so PyPI's data does not cover it): {', '.join(unchecked)}")
    return 1 if vulnerable else 0


def main() -> int:
    for service, url, body in services():
        if answers(url, body):
            print(f"pip-audit: auditing requirements.lock against {service}", flush=True)
            command = [sys.executable, "-m", "pip_audit", "--strict", "--progress-spinner", "off"]
            command += ["--vulnerability-service", service, "--no-deps", "--disable-pip", "-r", str(LOCK)]
            return subprocess.call(command)  # noqa: S603  # nosec B603 - our own interpreter, fixed arguments
    fallback = audit_latest_releases()
    if fallback is not None:
        return fallback
    print(
        "pip-audit: NOT RUN. Neither vulnerability service answered from this machine "
        "(PyPI's per-release JSON API https://pypi.org/pypi/NAME/VERSION/json, OSV https://api.osv.dev): "
        "the locked dependencies were NOT checked for known vulnerabilities. Run `make audit` "
        "where one of them can be reached.",
        file=sys.stderr,
    )
    return 0 if os.environ.get("AUDIT_OFFLINE") == "warn" else 1


if __name__ == "__main__":
    sys.exit(main())
