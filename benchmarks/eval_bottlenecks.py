"""Precision and recall of bottleneck findings on the whole sample fleet: ``python benchmarks/eval_bottlenecks.py``.

Runs the analysis the way the DAG does, window after window (``--window-hours``, default
1: the hourly schedule) over ``--days`` before the fleet's anchor, merges findings of one
(service, type) across windows into episodes and scores them against the ground truth:
incidents found with the right type, top-ranked cause and remedy; precision of episodes;
false episodes per 10 healthy service-days. Prints JSON; nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--window-hours", type=float, default=1.0)
    parser.add_argument("--anchor", default="2026-11-01", help="the fleet's 'now'")
    parser.add_argument("--predictions", action="store_true", help="also forecast every service and score the predicted bottlenecks")
    args = parser.parse_args()

    from include.headroom.bottlenecks.evaluation import evaluate_fleet
    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import SampleFleet

    config = get_config()
    started = time.perf_counter()
    result = evaluate_fleet(config, SampleFleet(config, anchor=args.anchor), days=args.days, window_hours=args.window_hours)
    figures = {"days": args.days, "window_hours": args.window_hours, "services": len(config.services), **result.to_dict(),
               "episodes_found": [f"{e.service} {e.type} {e.start:%Y-%m-%d %H:%M}..{e.end:%m-%d %H:%M} cause {e.top_cause} -> {e.remedy}"
                                  for e in result.all_episodes],
               "seconds": round(time.perf_counter() - started, 1)}
    from include.headroom.bottlenecks.evaluation import evaluate_root_causes

    # Root-cause service (across the call graph) of each incident's finding, cross-service incidents included.
    figures["root_cause"] = evaluate_root_causes(config, SampleFleet(config, anchor=args.anchor)).to_dict()
    if args.predictions:
        from include.headroom.bottlenecks.evaluation import evaluate_predictions

        figures["predicted"] = evaluate_predictions(config, SampleFleet(config, anchor=args.anchor)).to_dict()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
