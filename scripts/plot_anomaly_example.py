"""Draw docs/anomaly_petshop.png: a real PetShop series (PetSite latency) with the detector's events.

``python scripts/plot_anomaly_example.py``: the normal (noissue) PetSite average latency of the
high-traffic level, re-stamped to end just before train issue 0, then the issue's 25 minutes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from benchmarks.eval_anomalies import petshop_onset
    from include.headroom.anomalies import default_params, score
    from scripts.shared_data import petshop_dir

    root = petshop_dir()
    if root is None:
        print("petshop-train not found", file=sys.stderr)
        return 1
    series = petshop_onset(root)[0]
    out = score(series.frame)
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    threshold = default_params().threshold
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    top.plot(out["timestamp"], out["value"] * 1000, lw=0.8, color="#345")
    first, last = series.windows[0]
    top.axvspan(out["timestamp"].iloc[first], out["timestamp"].iloc[last], color="#f4c7a1", alpha=0.6, label="injected issue (label)")
    ev = out[out["event"] == "anomaly"]
    top.scatter(ev["timestamp"], ev["value"] * 1000, color="#c22", zorder=3, s=28, label="event reported")
    shift = out[out["event"] == "level_shift"]
    top.scatter(shift["timestamp"], shift["value"] * 1000, color="#e90", marker="s", zorder=3, s=24, label="level shift (new normal)")
    top.set_ylabel("PetSite latency, ms")
    top.legend(loc="upper left", fontsize=7, frameon=False)
    top.set_title("Real PetShop series: two days of normal operation, then issue 0 (high traffic)", fontsize=9)
    bottom.plot(out["timestamp"], out["anomaly_score"], lw=0.8, color="#555")
    bottom.axhline(threshold, color="#c22", lw=0.6, ls="--")
    bottom.set_ylabel("score")
    bottom.set_ylim(0, 1.02)
    fig.autofmt_xdate()
    fig.tight_layout()
    target = Path(__file__).resolve().parents[1] / "docs" / "anomaly_petshop.png"
    target.parent.mkdir(exist_ok=True)
    fig.savefig(target, dpi=80)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
