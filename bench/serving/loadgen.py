"""The load generator: a process of its own, so the servers under test share the machine
with it the same way. ``clients`` threads, each on one keep-alive connection, POST the same
body ``requests`` times in all (after ``warmup`` unmeasured requests each), and the
latencies and errors are printed as JSON.

    python bench/serving/loadgen.py --url http://127.0.0.1:8000/predict/xray \
        --content-type image/png --body-file xray.png --clients 8 --requests 800
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--content-type", required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.url)
    body = args.body_file.read_bytes()
    headers = {
        "Content-Type": args.content_type,
        "Connection": "keep-alive",
        **dict(h.split(": ", 1) for h in args.header),
    }
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    share = [
        args.requests // args.clients + (i < args.requests % args.clients)
        for i in range(args.clients)
    ]
    start_gate = threading.Barrier(args.clients + 1)

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)

        def one() -> tuple[float, str | None]:
            nonlocal conn
            t0 = time.perf_counter()
            try:
                conn.request("POST", url.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                err = None if resp.status == 200 else f"HTTP {resp.status}: {data[:200]!r}"
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
                err = f"{type(exc).__name__}: {exc}"
            return time.perf_counter() - t0, err

        for _ in range(args.warmup):
            one()
        start_gate.wait()
        mine, bad = [], []
        for _ in range(n):
            seconds, err = one()
            (bad if err else mine).append(err or seconds)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in share]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = [s * 1000 for s in latencies]
    print(
        json.dumps(
            {
                "clients": args.clients,
                "requests": args.requests,
                "errors": len(errors),
                "error_examples": sorted(set(errors))[:3],
                "seconds": wall,
                "throughput_rps": len(ms) / wall if wall else 0.0,
                "p50_ms": percentile(ms, 50) if ms else None,
                "p90_ms": percentile(ms, 90) if ms else None,
                "p99_ms": percentile(ms, 99) if ms else None,
                "max_ms": max(ms) if ms else None,
                "mean_ms": statistics.fmean(ms) if ms else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
