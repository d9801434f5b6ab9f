"""What every benchmark needs: the machine's description, free ports, gunicorn started and
stopped, `wrk` run and read, PostgreSQL reset and migrated, medians and Markdown tables.

Servers listen on 127.0.0.1 only, on ports chosen at run time; nothing here installs anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent  # the venv's bin: gunicorn and flask live beside this python
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"

# One server setting for every HTTP comparison: 2 workers x 4 threads (gthread) on 2 cores.
WORKERS = 2
THREADS = 4

# The app's production configuration, with Stripe pointed at the local fake (bench/fake_stripe.py).
BENCH_SECRET_KEY = "bench-secret-key-not-for-production"
BENCH_WEBHOOK_SECRET = "whsec_bench"


@dataclass
class Options:
    quick: bool
    runs: int
    database_url: str
    out_dir: Path
    big_runs: int = 1  # runs of each export at a million gifts
    deliveries: int | None = None  # the webhook burst (default 20,000; 400 with --quick)


@dataclass
class Section:
    """One part's results: a table of figures, the commands behind them, notes."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    ok: bool = True  # False when a correctness check (not a timing) failed

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", *markdown_table(self.headers, self.rows), ""]
        if self.commands:
            lines += ["Measured with:", "", *[f"    {c}" for c in self.commands], ""]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def error_section(title: str) -> Section:
    """A part (or a piece of one) that could not run: its traceback, in the results."""
    section = Section(title=f"{title}: could not run", headers=["error"], rows=[], ok=False)
    section.notes = ["Traceback:", *[f"`{line}`" for line in traceback.format_exc().rstrip().splitlines()]]
    traceback.print_exc()
    return section


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return out


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)) for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


# -- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE).group(1))  # type: ignore[union-attr]
    postgres = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "show server_version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "cores": str(os.cpu_count()),
        "cpu": model.group(1).strip() if model else "unknown",
        "memory": f"{total_kb / 1024 / 1024:.1f} GiB",
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "postgresql": postgres or "unknown",
        "wrk": (wrk.stdout + wrk.stderr).split("[")[0].strip(),
    }


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class CpuShare:
    """CPU-seconds spent during a run, by whom."""

    available: float  # cores x wall time
    busy: float  # by everything, from /proc/stat
    ours: float  # this process and every child it waited for (servers, wrk, psql, the CLI)
    postgresql: float  # the database server, for all of its clients

    @property
    def others(self) -> float:
        return max(0.0, self.busy - self.ours - self.postgresql)

    def sentence(self) -> str:
        share = self.others / self.available if self.available else 0.0
        return (
            f"CPU used during the run: this benchmark's processes {self.ours:,.0f} s, "
            f"PostgreSQL {self.postgresql:,.0f} s (for all its clients), everything else {self.others:,.0f} s, "
            f"of {self.available:,.0f} s available. "
            + (
                f"**The machine was shared with other work during the run** ({share:.0%} of its CPU): the "
                "figures are noisier than on a quiet machine; ratios measured side by side hold better than "
                "absolute rates."
                if share > 0.05
                else f"Other processes took {share:.0%} of the CPU (other clients' queries, if any, count "
                "under PostgreSQL)."
            )
        )


class CpuMeter:
    """Who used the CPU over an interval: all cores (/proc/stat), this process's tree (its own
    and its reaped children's times) and PostgreSQL's processes (live ones, plus what the
    postmaster reaped from backends that ended). What remains was other work."""

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _machine() -> tuple[float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields) / TICKS, (fields[3] + fields[4]) / TICKS

    @staticmethod
    def _postgresql() -> float:
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # the process ended meanwhile
                continue
            name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
            if name.startswith("postgres"):
                utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
                total += utime + stime + cutime + cstime
        return total / TICKS

    def _sample(self) -> tuple[float, float, float, float]:
        mine = os.times()
        total, idle = self._machine()
        ours = mine.user + mine.system + mine.children_user + mine.children_system
        return total, idle, ours, self._postgresql()

    def share(self) -> CpuShare:
        total, idle, ours, postgresql = self._sample()
        d_total = total - self._start[0]
        return CpuShare(
            available=d_total,
            busy=d_total - (idle - self._start[1]),
            ours=ours - self._start[2],
            postgresql=postgresql - self._start[3],
        )


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None and not Path(name).exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make bench-tools` (installs Debian's wrk and time)")


# -- ports and servers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 60, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.1)


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


@contextlib.contextmanager
def gunicorn(
    name: str,
    app: str,
    env: dict[str, str],
    out_dir: Path,
    *,
    ready_path: str = "/healthz",
    pythonpath: str | None = None,
) -> Iterator[Server]:
    """gunicorn with the benchmark's one setting, on a free loopback port, stopped on exit."""
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        "--workers",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "--worker-class",
        "gthread",
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT),
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
    ]
    if pythonpath:
        command += ["--pythonpath", pythonpath]
    command.append(app)
    log_path = out_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name=name, url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        wait_for(server.url + ready_path, process=process)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- wrk -----------------------------------------------------------------------------------------

_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unreadable wrk time {text!r}")
    return float(match.group(1)) * _UNITS_US[match.group(2)] / 1000


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors plus HTTP statuses above 399
    duration_s: float
    script: dict[str, Any]  # what the Lua script's done() printed, if anything
    cpu_seconds: float  # wrk's own CPU time: is the load generator the bottleneck?
    output: str


def wrk(
    url: str,
    *,
    duration: str,
    connections: int = 8,
    threads: int = 1,
    script: Path | None = None,
    script_args: Sequence[str] = (),
    finished_marker: str | None = None,
) -> WrkResult:
    """Run wrk with --latency. With `finished_marker`, the script prints that line once per
    thread when its work is done, and wrk is stopped (SIGINT: it then prints its summary over
    the real elapsed time) as soon as every thread has printed it."""
    command = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", duration, "--timeout", "30s"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    before = os.times()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines: list[str] = []
    finished = 0
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if finished_marker and line.strip() == finished_marker:
            finished += 1
            if finished == threads:
                process.send_signal(signal.SIGINT)
    process.wait()
    after = os.times()
    output = "".join(lines)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    return _parse_wrk(
        output, (after.children_user - before.children_user) + (after.children_system - before.children_system)
    )


def _parse_wrk(output: str, cpu_seconds: float) -> WrkResult:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise RuntimeError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    done = find(r"^\s*(\d+) requests in ([\d.]+\w+)")
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    script: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("BENCH-JSON "):
            script = json.loads(line.removeprefix("BENCH-JSON "))
    return WrkResult(
        requests_per_second=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_to_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_to_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        requests=int(done.group(1)),
        errors=errors + (int(non_2xx.group(1)) if non_2xx else 0),
        duration_s=_to_ms(done.group(2)) / 1000,
        script=script,
        cpu_seconds=cpu_seconds,
        output=output,
    )


# -- the app and its database ------------------------------------------------------------------


def libpq_url(database_url: str) -> str:
    """postgresql+psycopg://... -> postgresql://... (what psql and psycopg take)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", database_url)


def app_env(database_url: str, stripe_api_base: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of the app in its production configuration with the Stripe gateway."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DONATIONS_", "STRIPE_", "DATABASE_", "FLASK_", "REDIS_", "PAYMENTS_", "SMTP_"))
    }
    env.update(
        DONATIONS_CONFIG="production",
        SECRET_KEY=BENCH_SECRET_KEY,
        DATABASE_URL=database_url,
        STRIPE_SECRET_KEY="sk_test_bench",
        STRIPE_WEBHOOK_SECRET=BENCH_WEBHOOK_SECRET,
        # Only what gateways need at start-up; each part that calls Stripe starts the fake.
        STRIPE_API_BASE=stripe_api_base or "http://127.0.0.1:9",
        # Production requires them; nothing benchmarked here sends mail or builds mailed links.
        PUBLIC_URL="https://give.example.org",
        TRUSTED_HOSTS="127.0.0.1,localhost,give.example.org",
        SMTP_URL="smtp://127.0.0.1:9",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def flask_cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def ensure_database(database_url: str) -> None:
    """Create the PostgreSQL database if it does not exist (through the server's `postgres` one)."""
    url = libpq_url(database_url)
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def reset_schema(database_url: str) -> None:
    """An empty database: every table of the previous run goes."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")


def prepare_app_database(database_url: str) -> None:
    """The schema by the app's own migrations, and one default fund made by its CLI."""
    reset_schema(database_url)
    env = app_env(database_url)
    flask_cli(env, "db", "upgrade", "heads")
    # The installation id the events built by tests/stripe_events.py name: they are this app's own
    # (a payment naming another installation is not a gift here).
    if str(ROOT) not in sys.path:  # bench/run.py runs with bench/ on the path, not the repository
        sys.path.insert(0, str(ROOT))
    from tests.stripe_events import TEST_INSTALLATION_ID

    sql(
        database_url,
        "INSERT INTO installation (key, installation_id, created_at) VALUES ('this', %s, now())"
        " ON CONFLICT (key) DO UPDATE SET installation_id = EXCLUDED.installation_id",
        (TEST_INSTALLATION_ID,),
    )
    flask_cli(
        env,
        "funds",
        "add",
        "community-forums",
        "--name",
        "Community Forums Reporting",
        "--description",
        "Pays for our reporters to hold and cover open community forums in every neighborhood.",
        "--goal",
        "25000",
        "--default",
        "--show-progress",
    )


def sql(database_url: str, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        cursor = connection.execute(statement, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []
