"""Root-cause ranking on the PetShop train issues and the sample fleet's cross-service incidents: ``python benchmarks/eval_rootcause.py``.

For each issue: the position of the labelled root cause in the engine's ranking and in the
baseline's (nodes by their largest robust z-score against normal data), then top-1, top-3
and mean reciprocal rank per data set, and the engine's time per issue. Prints JSON;
nothing here asserts. The PetShop part is skipped, with the reason, when the data set is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _figures(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {"issues": len(ranks), "top1": round(sum(r == 1 for r in ranks) / n, 3),
            "top3": round(sum(r is not None and r <= 3 for r in ranks) / n, 3),
            "mrr": round(sum(1.0 / r for r in ranks if r) / n, 3)}


def petshop(root: Path, verbose: bool) -> dict:
    from include.headroom.bottlenecks.graph import read_graph_csv
    from include.headroom.bottlenecks.rootcause import rank_root_causes, read_long_csv, zscore_baseline

    engine, baseline, seconds, rows = [], [], [], []
    for level in ("high_traffic", "low_traffic"):
        graph = read_graph_csv(root / level / "graph.csv")
        normal = read_long_csv(root / level / "noissue.csv.gz")
        for issue_dir in sorted((root / level / "train").iterdir(), key=lambda p: int(p.name.split("_")[-1])):
            meta = json.loads((issue_dir / "issue.json").read_text())
            issue = read_long_csv(issue_dir / "metrics.csv")
            t = meta["target"]
            started = time.perf_counter()
            ranking = rank_root_causes(issue, normal, graph, t["service"], t["metric"], t["at"])
            seconds.append(time.perf_counter() - started)
            engine.append(ranking.rank_of(meta["root_cause"]))
            base = zscore_baseline(issue, normal, t["at"])
            baseline.append(base.index(meta["root_cause"]) + 1 if meta["root_cause"] in base else None)
            row = {"issue": meta["issue"], "metric": t["metric"], "rank": engine[-1], "baseline_rank": baseline[-1],
                   "top3": [c.service for c in ranking.candidates[:3]]}
            if verbose:
                row["top3_scores"] = [(c.service, c.score, c.own, c.explained_by, c.explained) for c in ranking.candidates[:4]]
            rows.append(row)
    return {"engine": _figures(engine), "zscore_baseline": _figures(baseline),
            "seconds_per_issue": {"mean": round(sum(seconds) / len(seconds), 4), "max": round(max(seconds), 4)}, "issues": rows}


def fleet(anchor: str) -> dict:
    """The sample fleet's incidents (cross-service ones included): the finding's root-cause service against the ground truth."""
    from include.headroom.bottlenecks.evaluation import evaluate_root_causes
    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import SampleFleet

    config = get_config()
    started = time.perf_counter()
    result = evaluate_root_causes(config, SampleFleet(config, anchor=anchor)).to_dict()
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--anchor", default="2026-11-01", help="the sample fleet's 'now'")
    args = parser.parse_args()
    from scripts.shared_data import petshop_dir

    out = {}
    root = petshop_dir()
    out["petshop_train"] = petshop(root, args.verbose) if root else {"skipped": "petshop-train not found (scripts/shared_data.petshop_dir)"}
    out["sample_fleet"] = fleet(args.anchor)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
