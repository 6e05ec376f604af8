"""DAG parse cost: each DAG file parsed in a fresh interpreter with ``airflow.sdk`` already imported, best of N.

The figure is the time of ``runpy.run_path(<dag file>)`` alone, set beside an empty DAG file parsed the
same way; the goal is every DAG file within 3x the empty DAG. A second reference, the TaskFlow floor (one
``@task`` on a cron timetable, nothing of headroom), shows what Airflow itself charges any DAG of that shape:
the ``@task`` decorator imports the standard provider's PythonOperator, a cron timetable imports croniter.
The table also lists the heavy client modules (boto3, botocore, kubernetes, redis, paramiko) the parse pulled
in and whether it opened a YAML file.

Imported modules are loaded as a running DAG processor loads them: from their bytecode cache (``__pycache__``,
written by an untimed first parse), whatever ``PYTHONDONTWRITEBYTECODE`` says in the calling shell. With that
variable set and no cache yet, every parse would also compile headroom's plugin modules from source (about 3 ms
for the scaling operators alone) while Airflow's come compiled from site-packages. The DAG file itself is
compiled on every parse (``runpy``), as the empty DAG is.

    python benchmarks/bench_dag_parse.py [--repeat 5] [--goal 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
HEAVY_CLIENTS = ("boto3", "botocore", "kubernetes", "redis", "paramiko")
EMPTY_DAG = '''"""### empty"""
from airflow.sdk import dag


@dag(schedule=None, catchup=False)
def empty():
    pass


empty()
'''

TASKFLOW_DAG = '''"""### floor"""
from airflow.sdk import CronDataIntervalTimetable, dag, task


@dag(schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"), catchup=False)
def floor():
    @task
    def one():
        pass

    one()


floor()
'''

# Runs in the child: airflow.sdk first (not timed), then the DAG file (timed); YAML opens are recorded.
PROBE = r"""
import builtins, io, json, sys, time
import airflow.sdk  # noqa: F401  (pre-imported: the DAG processor has it loaded already)
sys.path[:0] = [{project!r}, {plugins!r}]
opened = []
_open = builtins.open
def _recording_open(file, *args, **kwargs):
    if str(file).endswith((".yaml", ".yml")):
        opened.append(str(file))
    return _open(file, *args, **kwargs)
builtins.open = io.open = _recording_open
import runpy
before = set(sys.modules)
started = time.perf_counter()
runpy.run_path({path!r})
elapsed = time.perf_counter() - started
builtins.open = io.open = _open
heavy = sorted({{m.split(".")[0] for m in set(sys.modules) - before}} & set({heavy!r}))
print(json.dumps({{"s": elapsed, "heavy": heavy, "yaml": opened}}))
"""


def parse_once(path: Path, env: dict[str, str]) -> dict:
    code = PROBE.format(project=str(PROJECT), plugins=str(PROJECT / "plugins"), path=str(path), heavy=HEAVY_CLIENTS)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"parsing {path} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(path: Path, repeat: int, env: dict[str, str]) -> dict:
    parse_once(path, env)  # untimed: writes the bytecode cache of what the file imports
    runs = [parse_once(path, env) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["s"])
    return {"best_ms": best["s"] * 1000, "heavy": sorted({m for r in runs for m in r["heavy"]}),
            "yaml": sorted({f for r in runs for f in r["yaml"]})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="parses per file; the best is kept (default 5)")
    parser.add_argument("--goal", type=float, default=3.0, help="allowed multiple of the empty DAG's parse time (default 3)")
    parser.add_argument("files", nargs="*", help="DAG files (default: every file in dags/)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-dag-parse-") as tmp:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT / "dags")
        env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT / "plugins")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT), str(PROJECT / "plugins"), env.get("PYTHONPATH", "")) if p)
        empty = Path(tmp) / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        base = measure(empty, args.repeat, env)
        floor_file = Path(tmp) / "taskflow_floor.py"
        floor_file.write_text(TASKFLOW_DAG)
        floor = measure(floor_file, args.repeat, env)
        files = [Path(f) for f in args.files] or sorted((PROJECT / "dags").glob("*.py"))
        rows = [(f.name, measure(f, args.repeat, env)) for f in files]

    print(f"DAG parse, fresh interpreter per file, airflow.sdk pre-imported, imported modules from their bytecode cache, "
          f"best of {args.repeat}")
    print(f"{'file':<26}{'ms':>8}{'x empty':>9}{'x floor':>9}  heavy clients / YAML read")
    print(f"{'(empty DAG)':<26}{base['best_ms']:>8.1f}{1.0:>9.2f}{base['best_ms'] / floor['best_ms']:>9.2f}")
    print(f"{'(TaskFlow floor)':<26}{floor['best_ms']:>8.1f}{floor['best_ms'] / base['best_ms']:>9.2f}{1.0:>9.2f}")
    worst = worst_floor = 0.0
    for name, r in rows:
        ratio, over_floor = r["best_ms"] / base["best_ms"], r["best_ms"] / floor["best_ms"]
        worst, worst_floor = max(worst, ratio), max(worst_floor, over_floor)
        notes = ", ".join(r["heavy"] + [f"yaml:{Path(y).name}" for y in r["yaml"]])
        print(f"{name:<26}{r['best_ms']:>8.1f}{ratio:>9.2f}{over_floor:>9.2f}  {notes}")
    verdict = "met" if worst <= args.goal else "NOT met"
    print(f"goal: every DAG file <= {args.goal:g}x the empty DAG; worst {worst:.2f}x: {verdict} "
          f"(worst {worst_floor:.2f}x the TaskFlow floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
