"""Scaling policies over a set of demand traces, on demand: ``python benchmarks/eval_policies.py``.

Every trace goes through the replay (the scaling kernel, the product's forecasting engine refitted daily on
the past only, the simulated service of scaling.yaml ``replay:``) under reactive HPA, predictive and combined.
Prints per trace and in total: SLO-violation minutes, replica-hours, and combined against reactive
(goal: <= 0.5x the violation minutes at <= 1.0x the replica-hours). Nothing here asserts.

*Avoidable* minutes are the violation minutes outside the steps whose load violates the SLO even with the trace's
max replicas all serving (no policy within [min, max] can avoid those: the simulated service violates at fewer
replicas whenever it does at more). The ``avoidable`` column and the ``avoidable, ...`` rows subtract them; the
violation minutes and the totals above them are the raw counts.

Traces (development data only):
- ``fleet/<service>``: the sample fleet's 4 weeks before ``--anchor`` (2 weeks before that train the forecasts);
- ``petshop/<level>/<service>``: the PetShop train ``noissue`` request series (``requests``/``Sum`` per 5-minute
  bin, turned into req/s); only 2 days long, so no forecast is ever fitted: they check that the combined policy
  costs nothing where it has no forecast;
- ``pkg/taylor``: a real demand series shipped inside a PyPI package (no download): pmdarima's ``taylor``, the
  half-hourly electricity demand of England and Wales, Monday 5 June to Sunday 27 August 2000 (4,032 points, 12 weeks,
  daily and weekly seasons, a bank holiday). Read as a service's load at 1 MW = 0.05 req/s (about 1,100-2,000 req/s),
  interpolated in time to the replay's 5-minute step (``replay.regular_grid``); the first 2 weeks train the forecasts,
  the 10 weeks after are replayed, on the template service (general HPA profile) and on a critical-tier copy;
- ``gen/<shape>``: generated 5-week traces (daily and weekly seasons with noise, growth, a flash crowd, a
  noisy low-traffic service, a sharp morning ramp), seeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

POLICIES = ("reactive", "predictive", "combined")


def fleet_traces(config, anchor: str, weeks: int, services):
    import pandas as pd

    from include.headroom.metrics.sample_fleet import SampleFleet

    end = pd.Timestamp(anchor, tz="UTC")
    start = end - pd.Timedelta(weeks=weeks)
    names = services or [s.name for s in config.services]
    history = SampleFleet(config, anchor=anchor).generate(start - pd.Timedelta(days=14), end, services=names)
    out = []
    for name in names:
        rows = history[(history["service"] == name) & (history["metric"] == "throughput")].sort_values("ts")
        svc = config.service(name)
        out.append((f"fleet/{name}", pd.DatetimeIndex(pd.to_datetime(rows["ts"], utc=True)), rows["value"].to_numpy(float), svc, start))
    return out


def petshop_traces(config, template):
    import pandas as pd

    from scripts.shared_data import petshop_dir

    root = petshop_dir()
    if root is None:
        print("petshop-train not found: skipped")
        return []
    out = []
    for level in ("high_traffic", "low_traffic"):
        raw = pd.read_csv(root / level / "noissue.csv.gz")
        req = raw[(raw["metric"] == "requests") & (raw["statistic"] == "Sum")]
        for name in ("PetSite", "PetSearch_AWS::ECS::Fargate", "petlistadoptions_AWS::ECS::Fargate"):
            rows = req[req["service"] == name].sort_values("timestamp")
            if rows.empty:
                continue
            ds = pd.DatetimeIndex(pd.to_datetime(rows["timestamp"], utc=True))
            rps = rows["value"].to_numpy(float) / 300.0
            svc = _service(template, name.split("_")[0], rps)
            out.append((f"petshop/{level}/{name.split('_')[0]}", ds, rps, svc, ds[0]))
    return out


def package_traces(config, template, step_s: int):
    """pmdarima's ``taylor`` electricity demand (see the module docstring); [] when pmdarima is not installed."""
    import pandas as pd

    from include.headroom.scaling.replay import regular_grid

    try:
        from pmdarima.datasets import load_taylor
    except ImportError:
        print("pmdarima not installed: pkg/taylor skipped")
        return []
    mw = load_taylor()
    half_hours = pd.date_range("2000-06-05", periods=len(mw), freq="30min", tz="UTC")
    ds, rps, _ = regular_grid(pd.DataFrame({"ds": half_hours, "y": mw * 0.05}), step_s)
    start = ds[0] + pd.Timedelta(weeks=2)
    critical = next(s for s in config.services if config.tier(s.tier).hpa_profile == "critical")
    return [("pkg/taylor", ds, rps, _service(template, "taylor", rps), start),
            ("pkg/taylor_critical", ds, rps, _service(critical, "taylor-critical", rps), start)]


def generated_traces(template, weeks: int = 5, seed: int = 7):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-03-02", periods=weeks * 7 * 288, freq="5min", tz="UTC")
    hour = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    dow = ds.day_of_week.to_numpy()
    days = np.arange(len(ds)) / 288
    daily = 1 + 0.6 * np.sin(2 * np.pi * (hour - 9) / 24)
    weekly = np.where(dow >= 5, 0.7, 1.0)
    shapes = {
        "daily_noise": 800 * daily * (1 + 0.06 * rng.standard_normal(len(ds))),
        "weekly_growth": 600 * daily * weekly * 1.01 ** days * (1 + 0.05 * rng.standard_normal(len(ds))),
        "morning_ramp": 300 + 1200 * np.clip((hour - 7.5) / 1.0, 0, 1) * np.clip((19 - hour) / 1.5, 0, 1) * weekly
                        * (1 + 0.05 * rng.standard_normal(len(ds))),
        "flash_crowd": 700 * daily * (1 + 0.05 * rng.standard_normal(len(ds))) * np.where((days % 9 > 6.5) & (days % 9 < 6.6), 2.2, 1.0),
        "low_noisy": np.clip(40 * daily * (1 + 0.3 * rng.standard_normal(len(ds))), 0, None),
    }
    return [(f"gen/{name}", ds, y, _service(template, name, y), ds[0] + pd.Timedelta(weeks=2)) for name, y in shapes.items()]


def _service(template, name, load):
    """A service of ``template``'s tier sized so that the trace's peak needs about 70 % of its max replicas."""
    import dataclasses

    import numpy as np

    peak = float(np.nanpercentile(load, 99.5))
    cap = max(peak / (0.7 * 0.7 * 20), 1e-3)
    return dataclasses.replace(template, name=name, capacity_per_replica_rps=cap, min_replicas=2, max_replicas=20,
                               cost_per_replica_hour=0.10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--anchor", default="2026-11-01")
    parser.add_argument("--weeks", type=int, default=4, help="sample fleet weeks replayed")
    parser.add_argument("--services", help="comma-separated sample fleet services (default: all)")
    parser.add_argument("--sets", default="fleet,petshop,pkg,gen", help="which trace sets")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated traces' noise (a robustness check; figures use 7)")
    args = parser.parse_args()

    import pandas as pd

    from include.headroom.config import get_config
    from include.headroom.scaling.kernel import kernel_settings
    from include.headroom.scaling.settings import policy_settings
    from include.headroom.scaling.policy import scheduled_bounds
    from include.headroom.scaling.replay import ReplaySettings, replay_trace, simulated_service

    config = get_config()
    settings = policy_settings()
    rs = ReplaySettings.from_settings(settings)
    template = config.service("orders-api")
    sets = args.sets.split(",")
    traces = []
    if "fleet" in sets:
        traces += fleet_traces(config, args.anchor, args.weeks, args.services.split(",") if args.services else None)
    if "petshop" in sets:
        traces += petshop_traces(config, template)
    if "pkg" in sets:
        traces += package_traces(config, template, rs.step_s)
    if "gen" in sets:
        traces += generated_traces(template, seed=args.seed)
    print(f"{'trace':<34} {'policy':<10} {'viol. min':>9} {'replica-h':>10} {'actions':>7} {'trusted':>7} {'avoidable':>9}"
          "   combined/reactive")
    total = {p: [0.0, 0.0] for p in POLICIES}
    per_trace: dict[str, dict[str, tuple[float, float]]] = {}
    unavoidable: dict[str, float] = {}
    t0 = time.time()
    for name, ds, y, svc, start in traces:
        grid = pd.date_range(ds[0], ds[-1], freq=pd.Timedelta(seconds=rs.step_s))
        load = pd.Series(y, index=ds).groupby(level=0).mean().reindex(grid).to_numpy(float)
        begin = int(grid.searchsorted(start))
        results = replay_trace(grid, load, simulated_service(config, svc, settings), kernel_settings(config, svc, settings), POLICIES,
                               config.forecasting, rs, cost_per_replica_hour=svc.cost_per_replica_hour,
                               replicas_for=lambda v, s=svc: config.replicas_for(s, v),
                               scheduled=lambda at, n=svc.name: scheduled_bounds(settings.scheduled, n, at), start=begin)
        r, c = results["reactive"], results["combined"]
        per_trace[name] = {p: (results[p].slo_violation_minutes, results[p].replica_hours) for p in POLICIES}
        # minutes no policy can avoid: the load violates even with max replicas all serving
        sim = simulated_service(config, svc, settings)
        unavoidable[name] = rs.step_s / 60.0 * sum(1 for v in load[begin:] if v == v and sim.violates(v, svc.max_replicas))
        for p in POLICIES:
            res = results[p]
            total[p][0] += res.slo_violation_minutes
            total[p][1] += res.replica_hours
            ratio = ""
            if p == "combined":
                same = "=" if not c.slo_violation_minutes else "+"
                v = f"{c.slo_violation_minutes / r.slo_violation_minutes:.2f}x" if r.slo_violation_minutes else same
                ratio = f"viol {v}, hours {c.replica_hours / r.replica_hours:.3f}x"
            print(f"{name:<34} {p:<10} {res.slo_violation_minutes:>9.0f} {res.replica_hours:>10.1f} {res.scale_actions:>7} "
                  f"{res.floor_trusted_share:>7.2f} {res.slo_violation_minutes - unavoidable[name]:>9.0f}   {ratio}", flush=True)
    print("-" * 100)
    for p in POLICIES:
        print(f"{'TOTAL':<34} {p:<10} {total[p][0]:>9.0f} {total[p][1]:>10.1f}")
    rv, rh = total["reactive"]
    cv, ch = total["combined"]
    print(f"combined / reactive: SLO-violation minutes {cv / rv if rv else float('nan'):.3f}x, replica-hours {ch / rh:.3f}x "
          f"(goal <= 0.5x at <= 1.0x); {len(traces)} traces in {time.time() - t0:.0f} s")
    names = sorted(per_trace)
    groups = {"half A (even rows, sorted names)": names[0::2], "half B (odd rows, sorted names)": names[1::2]}
    worst = max(names, key=lambda n: per_trace[n]["reactive"][0])
    groups[f"without {worst} (most reactive minutes)"] = [n for n in names if n != worst]
    for label, members in groups.items():
        print(f"{label:<56} {_ratio(per_trace, members)}")
    gone = sum(unavoidable.values())
    left = {n: {p: (v - unavoidable[n], h) for p, (v, h) in per_trace[n].items()} for n in names}
    print(f"{'avoidable minutes only':<56} {_ratio(left, names)}; {gone:.0f} minutes violate even at max replicas "
          f"({', '.join(f'{n} {m:.0f}' for n, m in unavoidable.items() if m)})")
    for label, members in groups.items():
        print(f"{'avoidable, ' + label:<56} {_ratio(left, members)}")
    return 0


def _ratio(per_trace, names) -> str:
    """Combined against reactive over ``names``: violation minutes and replica-hours (x), with the minutes themselves."""
    rv = sum(per_trace[n]["reactive"][0] for n in names)
    rh = sum(per_trace[n]["reactive"][1] for n in names)
    cv = sum(per_trace[n]["combined"][0] for n in names)
    ch = sum(per_trace[n]["combined"][1] for n in names)
    v = f"{cv / rv:.3f}x" if rv else "n/a"
    return f"{len(names):>2} traces: violation minutes {v} ({cv:.0f} vs {rv:.0f}), replica-hours {ch / rh:.3f}x"


if __name__ == "__main__":
    raise SystemExit(main())
