"""Run the benchmarks, print a table per part, and write bench/RESULTS.md.

    .venv/bin/python bench/run.py                 # everything, full size (make bench)
    .venv/bin/python bench/run.py --quick         # a tiny version of every part, in seconds
    .venv/bin/python bench/run.py --parts webhooks --runs 5
    .venv/bin/python bench/run.py --parts webhooks --runs 1 --deliveries 2000   # a quick burst

Parts: gift_page, checkout, webhooks, reports (grant reports and their scaling). PostgreSQL
parts use --database-url (default: the `bench` database on 127.0.0.1); its schema is dropped and
re-made. Figures are the median of --runs runs (3 by default).
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
from pathlib import Path

from common import (
    BENCH,
    DEFAULT_DATABASE_URL,
    CpuMeter,
    CpuShare,
    Options,
    Section,
    ensure_database,
    error_section,
    load_average,
    log,
    machine,
    markdown_table,
    prepare_app_database,
    require_tools,
    text_table,
)

PARTS = {
    "gift_page": "gift_page",
    "checkout": "checkout",
    "webhooks": "webhooks",
    "reports": "reports",
}
FINDINGS = BENCH / "FINDINGS.md"
# Parts that run against the app's own schema (made once, before the first of them).
APP_SCHEMA_PARTS = {"gift_page", "checkout", "webhooks"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and short runs: checks the scripts work")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 3; 1 with --quick)")
    parser.add_argument(
        "--big-runs", type=int, default=1, help="runs of each export at 1,000,000 gifts (default 1: minutes each)"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument(
        "--deliveries",
        type=int,
        default=None,
        help="webhook deliveries per burst in part 3 (default 20,000; 400 with --quick), e.g. 2000 for a quick check",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--output", type=Path, default=None, help="default bench/RESULTS.md (bench/out/ with --quick)")
    parser.add_argument("--out-dir", type=Path, default=BENCH / "out", help="logs and scratch files")
    args = parser.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    output: Path = args.output or (out_dir / "RESULTS-quick.md" if args.quick else BENCH / "RESULTS.md")
    options = Options(
        quick=args.quick,
        runs=runs,
        database_url=args.database_url,
        out_dir=out_dir,
        big_runs=args.big_runs,
        deliveries=args.deliveries,
    )
    require_tools("wrk", "/usr/bin/time", "psql", "sqlite3")
    ensure_database(options.database_url)

    parts = [name for name in PARTS if name in args.parts.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = load_average()
    cpu = CpuMeter()
    begin = time.monotonic()
    sections: list[Section] = []
    failed = False
    if APP_SCHEMA_PARTS & set(parts):
        log("migrating the app's schema into a fresh database")
        prepare_app_database(options.database_url)
    for name in parts:
        log(f"part {name}")
        module = importlib.import_module(PARTS[name])
        try:
            produced = module.run(options)
            new_sections = produced if isinstance(produced, list) else [produced]
        except Exception:  # a part that cannot run is reported, and the others still run
            new_sections = [error_section(name)]
        for section in new_sections:
            failed = failed or not section.ok
            sections.append(section)
            print(f"\n== {section.title}\n")
            if section.rows:
                print(text_table(section.headers, section.rows))
            for note in section.notes:
                print(f"  - {note}")
            print(flush=True)

    elapsed = time.monotonic() - begin
    command = "make bench" if not argv else f".venv/bin/python bench/run.py {shlex.join(argv)}"
    output.write_text(
        report(command, started, elapsed, load_before, load_average(), cpu.share(), options, sections), encoding="utf-8"
    )
    log(f"wrote {output} in {elapsed:.0f} s")
    return 1 if failed else 0


def report(
    command: str,
    started: str,
    elapsed: float,
    load_before: str,
    load_after: str,
    cpu: CpuShare,
    options: Options,
    sections: list[Section],
) -> str:
    info = machine()
    lines = [
        "# Benchmark results",
        "",
        "Written by `bench/run.py`; do not edit by hand (re-run it).",
        "",
        f"- Command: `{command}`" + (" (quick mode: tiny sizes, not meaningful figures)" if options.quick else ""),
        f"- Started {started}; took {elapsed / 60:.1f} min; each figure is the median of {options.runs} run(s) "
        f"(exports at 1,000,000 gifts: {options.big_runs}).",
        f"- Load average before / after: {load_before} / {load_after}. {cpu.sentence()}",
        "",
        *markdown_table(["machine", ""], [[key, value] for key, value in info.items()]),
        "",
    ]
    for section in sections:
        lines += [section.markdown(), ""]
    if FINDINGS.exists() and not options.quick:
        # Written by hand: what the profiles showed, what was changed, before and after.
        lines += [FINDINGS.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
