"""`nnpipe serve` under slow and hostile clients, on loopback, with bounded counts and
times: how fast `/health` answers at rest, while slow clients hold connections open
(headers or bodies trickling in), and while the worst requests the limits allow are
decoded; how soon an oversized chunked body gets 413 and a keyless one 401, and how much
of it the server let in.

    make run                                     # once: a registered X-ray champion
    python bench/serving/hostile.py              # in the project; bench/results/serving_limits.json
    python bench/serving/hostile.py --alias challenger --slow-clients 20 --seconds 5

Not a test: the numbers depend on the machine. The test suite checks the properties
(tests/integration/test_serve_limits.py); this measures them at a larger, still bounded,
scale (at most 200 slow connections, 60 s per phase, 2 GiB uploaded).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import RESULTS, PeakMemory, free_port, server  # noqa: E402

KEY = "bench-key"


def health_latencies(
    port: int, calls: int, gap: float = 0.02, until: threading.Thread | None = None
) -> list[float]:
    """``calls`` GET /health on one keep-alive connection (or while ``until`` runs)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: list[float] = []
    try:
        while len(out) < calls if until is None else until.is_alive():
            start = time.perf_counter()
            conn.request("GET", "/health")
            conn.getresponse().read()
            out.append(time.perf_counter() - start)
            time.sleep(gap)
    finally:
        conn.close()
    return out


def summary(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "calls": len(ordered),
        "median_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def slow_clients(port: int, clients: int, seconds: float, body: bool) -> list[float]:
    """``clients`` connections that trickle a request in (a header byte, or a body byte,
    every 0.2 s) for ``seconds``, while /health is measured."""
    socks = []
    for _ in range(clients):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if body:
            s.sendall(
                f"POST /predict/xray HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
                "Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n".encode()
            )
        else:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.2):
            for s in socks:
                try:
                    s.send(b"\0" if body else b"X")
                except OSError:
                    pass

    feeder = threading.Thread(target=trickle)
    feeder.start()
    timer = threading.Thread(target=time.sleep, args=(seconds,))
    timer.start()
    try:
        return health_latencies(port, 0, gap=0.05, until=timer)
    finally:
        stop.set()
        feeder.join()
        for s in socks:
            s.close()


def worst_body(side: int, images: int) -> tuple[bytes, str]:
    """A multipart batch of 16-bit PNGs at the largest allowed side (a ramp: small on the
    wire, full-size decoded)."""
    from PIL import Image

    ramp = (np.add.outer(np.arange(side), np.arange(side)) * 7 % 65536).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")
    boundary = "nnpipe-bench"
    part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="w.png"'
            "\r\nContent-Type: image/png\r\n\r\n"
        ).encode()
        + buf.getvalue()
        + b"\r\n"
    )
    return part * images + f"--{boundary}--\r\n".encode(), boundary


def worst_requests(port: int, concurrent: int, body: bytes, boundary: str) -> dict:
    statuses, seconds = [], []

    def one() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        start = time.perf_counter()
        conn.request(
            "POST",
            "/predict/xray/batch",
            body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-API-Key": KEY},
        )
        resp = conn.getresponse()
        resp.read()
        statuses.append(resp.status)
        seconds.append(time.perf_counter() - start)
        conn.close()

    threads = [threading.Thread(target=one) for _ in range(concurrent)]
    for t in threads:
        t.start()
    waiter = threading.Thread(target=lambda: [t.join() for t in threads])
    waiter.start()
    time.sleep(0.2)
    latencies = health_latencies(port, 0, gap=0.05, until=waiter)
    return {"statuses": statuses, "request_seconds": seconds, "health": summary(latencies)}


def chunked(port: int, total: int, headers: dict[str, str], chunk: int = 2**16) -> dict:
    """A chunked POST of ``total`` bytes; the answer read while it is sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        f"POST /predict/xray HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Type: image/png\r\n{head}\r\n".encode()
    )
    frame = f"{chunk:x}\r\n".encode() + b"7" * chunk + b"\r\n"
    sent, done = [0], threading.Event()

    def feed() -> None:
        try:
            while sent[0] < total and not done.is_set():
                sock.sendall(frame)
                sent[0] += chunk
        except OSError:
            pass

    start = time.perf_counter()
    feeder = threading.Thread(target=feed)
    feeder.start()
    answer = b""
    while b"\r\n" not in answer:
        piece = sock.recv(4096)
        if not piece:
            break
        answer += piece
    seconds = time.perf_counter() - start
    done.set()
    feeder.join()
    sock.close()
    return {
        "status": int(answer.split()[1]),
        "ms": seconds * 1000,
        "sent_mib": sent[0] / 2**20,
        "of_mib": total / 2**20,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--slow-clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0, help="per slow-client phase")
    parser.add_argument("--worst", type=int, default=2, help="concurrent worst requests")
    parser.add_argument("--upload-mb", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS / "serving_limits.json")
    args = parser.parse_args()
    if not (
        1 <= args.slow_clients <= 200
        and 0 < args.seconds <= 60
        and 1 <= args.worst <= 8
        and 1 <= args.upload_mb <= 2048
    ):
        parser.error(
            "bounded: --slow-clients 1..200, --seconds up to 60, --worst 1..8, --upload-mb 1..2048"
        )

    project = args.project.resolve()
    args.out = args.out.resolve()
    sys.path.insert(0, str(project / "src"))
    from nnpipe.config import load_params

    os.chdir(project)
    limits = load_params("params.yaml").serve
    port = free_port()
    env = {**os.environ, "NNPIPE_API_KEY": KEY, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [
        sys.executable,
        "-m",
        "nnpipe",
        "serve",
        "--domain",
        "xray",
        "--alias",
        args.alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = Path(tempfile.mkdtemp(prefix="nnpipe-bench-hostile-")) / "serve.log"
    side = limits.max_side
    images = max(1, min(limits.max_batch, limits.max_batch_pixels // (side * side)))
    body, boundary = worst_body(side, images)
    results: dict = {
        "limits": limits.model_dump(),
        "worst_request": {"images": images, "side": side, "mode": "16-bit PNG", "bytes": len(body)},
    }
    with (
        server(cmd, f"http://127.0.0.1:{port}/ready", log, env) as proc,
        PeakMemory(proc.pid) as memory,
    ):
        results["health_at_rest"] = summary(health_latencies(port, 100))
        results["slow_headers"] = {
            "clients": args.slow_clients,
            "seconds": args.seconds,
            "health": summary(slow_clients(port, args.slow_clients, args.seconds, body=False)),
        }
        results["slow_bodies"] = {
            "clients": args.slow_clients,
            "seconds": args.seconds,
            "health": summary(slow_clients(port, args.slow_clients, args.seconds, body=True)),
        }
        results["worst_requests"] = {
            "concurrent": args.worst,
            **worst_requests(port, args.worst, body, boundary),
        }
        total = args.upload_mb * 2**20
        results["chunked_over_limit"] = chunked(port, total, {"X-API-Key": KEY})
        results["chunked_without_key"] = chunked(port, total, {})
        results["health_after"] = summary(health_latencies(port, 50))
        results["server_peak_rss_mb"] = memory.peak / 2**20
    results["tracebacks_in_log"] = log.read_text().count("Traceback")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for name in ("health_at_rest", "slow_headers", "slow_bodies", "worst_requests", "health_after"):
        h = results[name].get("health", results[name])
        print(
            f"{name:>20}: /health median {h['median_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms,"
            f" max {h['max_ms']:.1f} ms ({h['calls']} calls)"
        )
    w = results["worst_requests"]
    print(
        f"{'worst requests':>20}: {args.worst} x {images} images of {side}^2, statuses "
        f"{w['statuses']}, {max(w['request_seconds']):.2f} s"
    )
    for name in ("chunked_over_limit", "chunked_without_key"):
        c = results[name]
        print(
            f"{name:>20}: {c['status']} after {c['ms']:.0f} ms, {c['sent_mib']:.1f} of "
            f"{c['of_mib']:.0f} MiB sent"
        )
    print(
        f"{'server peak RSS':>20}: {results['server_peak_rss_mb']:.0f} MB; tracebacks in "
        f"its log: {results['tracebacks_in_log']}; written to {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
