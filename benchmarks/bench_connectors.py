"""Connector throughput: records/second for a full pull of N records through one HTTP connector against its
local API stand-in (real HTTP on 127.0.0.1, real paging), landed in the embedded store, with and without the
connector's rate limit from ``connectors.yaml``.

    python benchmarks/bench_connectors.py [--records 100000] [--connector servicenow]

Connectors: servicenow (Table API, 1,000 a page, quota 10 calls/s burst 20), salesforce (SOQL, 2,000 a page),
sap_s4hana / dynamics_365 (OData pages of 1,000 / 500), hubspot (100 a page, 100 calls per 10 s on starter).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

OBJECTS = {  # connector -> (pull object, seed method)
    "servicenow": ("cmdb_ci_service", "seed"),
    "salesforce": ("Account", "seed"),
    "hubspot": ("companies", "seed"),
    "sap_s4hana": ("A_CostCenter", "seed_sap"),
    "dynamics_365": ("accounts", "seed_dynamics"),
}


def server_for(name: str):
    from include.headroom.connectors.settings import load_connectors
    from tests.connectors_api import HubSpotApi, ODataApi, SalesforceApi, ServiceNowApi

    if name == "servicenow":
        return ServiceNowApi()
    if name == "salesforce":
        return SalesforceApi()
    if name == "hubspot":
        return HubSpotApi()
    path = load_connectors()[name].options["service_path"]
    return ODataApi(path, "basic") if name == "sap_s4hana" else ODataApi(path, "bearer", login="", secret="bench-token")


def _serve(name: str, records: int, conn, stop) -> None:
    """Child process: the stand-in server with ``records`` records (its own interpreter, so it does not share our GIL)."""
    from tests.include.connectors.conftest import creds_for

    obj, seed = OBJECTS[name]
    server = server_for(name)
    getattr(server, seed)(obj, records, step_s=1)
    server.cache_results = True  # the remote's index: sorting 100k rows per page would measure the stand-in, not the connector
    server.start()
    conn.send(creds_for(server))
    stop.wait()
    server.stop()


def run(name: str, records: int, rate_limited: bool) -> dict[str, float]:
    import multiprocessing

    from include.headroom.connectors.engine import pull
    from include.headroom.connectors.registry import build_http_connector
    from include.headroom.connectors.settings import load_connectors
    from include.headroom.store import ParquetStore

    obj, _ = OBJECTS[name]
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    proc = ctx.Process(target=_serve, args=(name, records, child, stop), daemon=True)
    proc.start()
    try:
        creds = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            connector = build_http_connector(load_connectors()[name], creds, Path(tmp) / "state", rate_limited=rate_limited)
            store = ParquetStore(Path(tmp) / "store")
            started = time.perf_counter()
            report = pull(store, connector, obj)
            seconds = time.perf_counter() - started
            assert report.landed == records == store.count("connector_records"), report
    finally:
        stop.set()
        proc.join(timeout=30)
    return {"seconds": seconds, "records_per_s": records / seconds, "calls": report.calls, "pages": report.pages,
            "throttled_s": report.throttled_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--connector", choices=sorted(OBJECTS), default="hubspot")
    args = parser.parse_args()
    from include.headroom.connectors.settings import load_connectors

    s = load_connectors()[args.connector]
    print(f"{args.records:,} records through {args.connector} (page {s.page_size}, quota {s.quota.calls:g} calls / {s.quota.per_s:g} s, "
          f"burst {s.quota.burst:g}) into the embedded store")
    for limited in (False, True):
        r = run(args.connector, args.records, limited)
        print(f"  {'with' if limited else 'without'} rate limit: {r['records_per_s']:>9,.0f} records/s  ({r['seconds']:.1f} s, "
              f"{r['calls']} calls, {r['pages']} pages, waited for quota {r['throttled_s']:.1f} s)")


if __name__ == "__main__":
    main()
