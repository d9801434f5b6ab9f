"""The benchmarks' quick mode, so that the scripts in bench/ cannot rot.

Each test runs one part of `bench/run.py --quick` (tiny sizes, runs of a second or two) in a
database of its own next to the test database (`<test db>_bench`: the benchmarks drop and
re-make its schema), then checks that it exited cleanly, printed its table, and wrote figures
to its results file. Timings are never asserted: only that there are figures, and that the
correctness checks the benchmarks make (the ledger after the webhook storm, one pending gift
per checkout) passed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgresql_only  # the benchmarks measure PostgreSQL


@pytest.fixture(scope="module")
def bench_database_url() -> str:
    assert TEST_DATABASE_URL
    base, _, name = TEST_DATABASE_URL.rpartition("/")
    return f"{base}/{name.split('?')[0]}_bench"


def run_quick(part: str, database_url: str, out_dir: Path) -> tuple[str, str]:
    results = out_dir / "RESULTS.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--parts",
            part,
            "--database-url",
            database_url,
            "--out-dir",
            str(out_dir),
            "--output",
            str(results),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]
    return completed.stdout, results.read_text()


def table_rows(markdown: str, title_start: str) -> list[list[str]]:
    """The data rows of the table under the section whose title starts with `title_start`."""
    section = markdown.split(f"## {title_start}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def figure(cell: str) -> float:
    return float(cell.replace(",", ""))


def test_gift_page_quick(bench_database_url, tmp_path):
    printed, written = run_quick("gift_page", bench_database_url, tmp_path)
    assert "1. Gift page" in printed
    rows = table_rows(written, "1. Gift page")
    assert [row[0] for row in rows] == ['bare Flask "hello"', "GET /give", "GET /give, page cache off (before)"]
    for row in rows:
        assert figure(row[1]) > 0 and figure(row[2]) > 0 and figure(row[3]) > 0  # requests/s, p50, p99
    assert re.search(r"Ratio GET /give / hello = \*\*\d+\.\d\d\*\*.* With the page cache off: \d+\.\d\d\.", written)
    assert "cores | 2" in written or re.search(r"\| cores \| \d+ \|", written)


def test_checkout_quick(bench_database_url, tmp_path):
    printed, written = run_quick("checkout", bench_database_url, tmp_path)
    assert "2. Checkout creation" in printed
    [row] = table_rows(written, "2. Checkout creation")
    assert figure(row[1]) > 0 and figure(row[3]) > 0
    # Every form opened one session at the fake Stripe and left one pending gift holding it.
    assert "(consistent)" in written


def test_webhooks_quick(bench_database_url, tmp_path):
    printed, written = run_quick("webhooks", bench_database_url, tmp_path)
    assert "3. Webhooks" in printed
    rows = table_rows(written, "3. Webhooks")
    assert len(rows) == 2
    for row in rows:
        assert figure(row[1]) > 0 and figure(row[2]) > 0
    assert re.search(r"Ratio app / minimal = \*\*\d+\.\d\d\*\*", written)
    assert re.search(r"In process .*: minimal / app = \*\*\d+\.\d\d\*\* by CPU time", written)
    for row in rows:  # the in-process CPU and Python calls per delivery beside deliveries/s
        assert figure(row[6]) > 0 and figure(row[7]) > 0
    assert "Ledger after each app run: **exact**" in written
    assert "360 distinct events" in written  # 400 deliveries, 10% of them repeats
    assert re.search(r"1 worker \*\*[\d,]+\*\* events/s, 2 workers \*\*[\d,]+\*\* events/s", written)
    assert re.search(r"p50 \*\*\d+\.\d\d s\*\*, p99 \*\*\d+\.\d\d s\*\*, max \*\*\d+\.\d\d s\*\*", written)


def test_reports_quick(bench_database_url, tmp_path):
    printed, written = run_quick("reports", bench_database_url, tmp_path)
    for title in ("4. Grant reports on PostgreSQL", "4b. Grant reports on SQLite", "5. Scaling"):
        assert title in printed
    for title in ("4. Grant reports on PostgreSQL", "4b. Grant reports on SQLite"):
        rows = table_rows(written, title)
        assert {(row[0], row[1]) for row in rows} == {
            ("donors", "csv"),
            ("donors", "xlsx"),
            ("ledger", "csv"),
            ("ledger", "xlsx"),
        }
        for row in rows:
            assert figure(row[2]) > 0 and figure(row[3]) > 0  # the CLI's seconds and peak MB
            assert figure(row[5]) >= 0  # the floor's seconds (a tiny query may take under 10 ms)
            assert figure(row[4]) > 0 and figure(row[4]) == figure(row[7])  # the floor lists the same rows
    scaling = table_rows(written, "5. Scaling")
    assert [row[0] for row in scaling] == ["donors", "ledger"]
    assert all(figure(cell) > 0 for row in scaling for cell in row[1:])


def run_profile(script: str, database_url: str, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), database_url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]
    return completed.stdout


def test_gift_page_profile_quick(bench_database_url, tmp_path):
    profile = tmp_path / "give.prof"
    options = ["-n", "50", "--runs", "1", "--profile", str(profile)]
    printed = run_profile("profile_gift_page.py", bench_database_url, *options)
    run = re.search(r"^\s*1\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)$", printed, re.MULTILINE)
    assert run, printed
    assert all(float(value) > 0 for value in run.groups())  # CPU ms of each app, and their ratio
    assert profile.stat().st_size > 0


def test_webhook_profile_quick(bench_database_url):
    printed = run_profile("profile_webhooks.py", bench_database_url, "-n", "40")
    assert re.search(r"^all: \d+\.\d\d ms CPU, \d+\.\d\d statements per delivery$", printed, re.MULTILINE), printed
    assert re.search(r"^ledger: .*: exact$", printed, re.MULTILINE), printed  # the script's own ledger check
