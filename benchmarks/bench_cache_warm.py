"""Cache warming speed: keys/second warmed into a real redis-server, 100,000 keys of 1 KB, per pipeline batch size.

Each run starts from an empty Redis (``FLUSHALL``) and goes through the whole warmer: the PTTL check
of every key, the ``INFO memory`` guard before each batch, the loader origin, and ``SET ... EX``
in ``MULTI``/``EXEC`` batches. The rate limit is lifted so the figure is the warmer's own speed.
Needs the Debian package ``redis-server``.

    python benchmarks/bench_cache_warm.py [--keys 100000] [--size 1024] [--batch-sizes 1,10,100,500,1000,5000]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    import redis

    from include.headroom.cache.origin import LoaderOrigin
    from include.headroom.cache.redis_warmer import warm_redis
    from include.headroom.cache.settings import load_cache_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch-sizes", default="1,10,100,500,1000,5000")
    parser.add_argument("--maxmemory", default="1gb")
    args = parser.parse_args()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    workdir, port = Path(tempfile.mkdtemp(prefix="bench-redis-")), _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
                             "--appendonly", "no", "--maxmemory", args.maxmemory], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        settings = load_cache_settings()
        entries = [(f"bench:item:{i}", args.size, 600) for i in range(args.keys)]
        origin = LoaderOrigin("sample_fleet")
        print(f"redis-server {client.info('server')['redis_version']} on 127.0.0.1:{port}, maxmemory {args.maxmemory}; "
              f"{args.keys:,} keys of {args.size} B; configured batch size {settings.redis.batch_size}, "
              f"rate limit {settings.redis.rate_keys_per_s:,.0f} keys/s (lifted here)")
        print(f"{'batch':>6} {'seconds':>8} {'keys/s':>10} {'MB/s':>7} {'warmed':>8} {'used MB':>8}  status")
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            client.flushall()
            redis_settings = replace(settings.redis, batch_size=batch, rate_keys_per_s=1e12)
            started = time.perf_counter()
            result = warm_redis(client, entries, origin, redis_settings, settings.warming)
            seconds = time.perf_counter() - started
            print(f"{batch:>6} {seconds:>8.2f} {result.warmed / seconds:>10,.0f} {result.bytes / seconds / 1e6:>7.1f} "
                  f"{result.warmed:>8,} {result.used_memory_after / 1e6:>8.1f}  {result.status.value}", flush=True)
        client.flushall()
        started = time.perf_counter()
        result = warm_redis(client, entries, origin, settings.redis, settings.warming)
        seconds = time.perf_counter() - started
        print(f"with the configured rate limit ({settings.redis.rate_keys_per_s:,.0f} keys/s) and batch {settings.redis.batch_size}: "
              f"{result.warmed / seconds:,.0f} keys/s")
        again = time.perf_counter()
        result = warm_redis(client, entries, origin, settings.redis, settings.warming)
        print(f"second run (all keys fresh, skipped): {result.skipped_fresh:,} keys checked in {time.perf_counter() - again:.2f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
