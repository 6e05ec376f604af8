"""Command line: ``python -m include.headroom <command>``; ``--help`` lists the commands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from include.headroom.exceptions import HeadroomError


def _sample_fleet(args: argparse.Namespace) -> int:
    from include.headroom.config import data_dir, get_config
    from include.headroom.metrics.sample_fleet import SampleFleet

    out = args.out or data_dir() / "sample_fleet"
    summary = SampleFleet(get_config(), anchor=args.anchor).write(out, days=args.days)
    print(json.dumps({**summary, "folder": str(out)}, indent=2))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from include.headroom.config import get_config
    from include.headroom.metrics.store import open_store
    from include.headroom.pipeline import summary

    rows = summary(open_store(), get_config(), args.as_of)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]}
    print("  ".join(k.ljust(w) for k, w in widths.items()))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in widths.items()))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from include.headroom.metrics.store import open_store

    rows = open_store().query(
        "SELECT created_at, kind, service, action, status, reason FROM audit WHERE kind = ? ORDER BY created_at DESC LIMIT ?",
        [args.kind, args.limit],
    )
    for r in rows.itertuples():
        print(f"{r.created_at:%Y-%m-%d %H:%M:%S} {r.service} {r.action} [{r.status}] {r.reason}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.headroom", description="headroom: capacity and performance operations")
    commands = parser.add_subparsers(dest="command", required=True)

    fleet = commands.add_parser("sample-fleet", help="write the sample fleet's history and ground truth")
    fleet.add_argument("--anchor", help="the fleet's 'now' (a date, UTC); default today, or $HEADROOM_SAMPLE_ANCHOR")
    fleet.add_argument("--days", type=int, help="days of history before the anchor (default from sample_fleet.yaml)")
    fleet.add_argument("--out", help="folder to write (default $HEADROOM_DATA_DIR/sample_fleet)")
    fleet.set_defaults(func=_sample_fleet)

    summ = commands.add_parser("summary", help="per service: saturation, bottleneck, scaling and cache outcome")
    summ.add_argument("--as-of", required=True, help="the time to summarize at (UTC)")
    summ.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summ.set_defaults(func=_summary)

    aud = commands.add_parser("audit", help="the newest audit records of one kind (scaling, cache, connector)")
    aud.add_argument("--kind", required=True, choices=["scaling", "cache", "connector"])
    aud.add_argument("--limit", type=int, default=5)
    aud.set_defaults(func=_audit)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except HeadroomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
