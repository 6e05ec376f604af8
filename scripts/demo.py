"""``make demo``: generate the sample fleet, run every pipeline DAG with ``airflow dags test``, print a summary."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, UTC
from pathlib import Path

from scripts.pipeline_run import dags_test, default_as_of, run_pipeline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--as-of", help="the pipeline's time (UTC, ISO); default the latest 02:00 UTC")
    parser.add_argument("--keep", action="store_true", help="keep the existing store instead of starting fresh")
    parser.add_argument("--window-days", type=float, default=14.0, help="days the bottleneck analysis reviews")
    args = parser.parse_args()

    started = time.monotonic()
    as_of = datetime.fromisoformat(args.as_of) if args.as_of else default_as_of()
    anchor = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    data = Path(os.environ["HEADROOM_DATA_DIR"])
    if not args.keep:
        for sub in ("store", "sample_fleet", "outbox"):
            shutil.rmtree(data / sub, ignore_errors=True)
    print(f"headroom demo: pipeline as of {as_of.isoformat()}, sample fleet anchored at {anchor.date()}, data in {data}", flush=True)
    subprocess.run([sys.executable, "-m", "include.headroom", "sample-fleet", "--anchor", anchor.isoformat()], check=True,
                   stdout=subprocess.DEVNULL)
    results = run_pipeline(as_of, window_hours=args.window_days * 24)
    if not all(r.ok for r in results):
        failed = results[-1]
        print(f"\n{failed.dag_id} ended {failed.state}; its log: {failed.log}", file=sys.stderr)
        print(failed.log.read_text()[-4000:], file=sys.stderr)
        return 1
    print("\nPer service (scaling and cache actions are dry-run):", flush=True)
    subprocess.run([sys.executable, "-m", "include.headroom", "summary", "--as-of", as_of.isoformat()], check=True)
    connector = subprocess.run([sys.executable, "-m", "include.headroom", "audit", "--kind", "connector", "--limit", "1"],
                               check=True, capture_output=True, text=True).stdout.strip()
    print(f"\nConnector sync: {connector}")
    show_alerts(data)
    reports = Path(os.environ["HEADROOM_REPORTS_DIR"])
    print(f"\nReport: {reports / f'capacity_report_{as_of:%Y-%m-%d}.html'} (also {reports / 'latest.html'})")
    print(f"Demo finished in {timedelta(seconds=round(time.monotonic() - started))}.")
    return 0


def show_alerts(data: Path) -> None:
    """Run the alerts DAG now (a run for a past interval never notifies) and print what the log channel was told."""
    import json

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    result = dags_test("alerts", now)
    outbox = data / "outbox" / "alerts.jsonl"
    notices = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []
    print(f"\nAlerts ({result.state}, {len(notices)} notices through the shipped log channel; alerts.yaml routes them to "
          f"Slack, email, PagerDuty or SNS):", flush=True)
    for n in notices:
        print(f"  {n['title']}\n      {n['summary']}")
    if not notices:
        print("  none")
    print(f"  (all notices: {outbox}; the run's log: {result.log})")


if __name__ == "__main__":
    sys.exit(main())
