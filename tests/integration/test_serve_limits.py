"""`nnpipe serve` under hostile and unlucky clients, over real HTTP on loopback (a real
server process): a chunked body cut off at the size limit and an API key checked before
any body is read, the routes the key protects, no Python reprs nor a `server` header in
answers, a client that leaves mid-upload, image and array limits, `/health` answering
while the worst allowed request is decoded, and schemathesis over the server's own
OpenAPI with no server error and no undeclared status code."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import socket
import statistics
import subprocess
import threading
import time

import numpy as np
import pytest
from conftest import BIN, free_port, nnpipe, server_process
from PIL import Image

pytestmark = pytest.mark.integration

KEY = "test-key-0123"
BAR = [1, 2, 0.5, 1.5, 100]  # Open, High, Low, Close, Volume: a consistent bar
LIMIT_MB = 10


@pytest.fixture(scope="module")
def server(flow_project, tmp_path_factory):
    """`nnpipe serve` on the flow project's newest versions (both domains), with an API
    key; yields (port, log path)."""
    port, log = free_port(), tmp_path_factory.mktemp("serve-limits") / "serve.log"
    env = {**os.environ, "NNPIPE_API_KEY": KEY}
    cmd = [
        str(BIN / "nnpipe"),
        "serve",
        "--alias",
        "challenger",
        "--port",
        str(port),
        "--max-request-mb",
        str(LIMIT_MB),
    ]
    with server_process(cmd, f"http://127.0.0.1:{port}/ready", log, env=env, cwd=flow_project):
        yield port, log


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def chunked_upload(
    port: int, path: str, headers: dict[str, str], total: int, chunk: int = 2**16
) -> dict:
    """POST ``total`` bytes as a chunked body while reading the answer as it comes: the
    status, the body, the bytes the server let in before answering, and the seconds."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        f"{head}\r\n".encode()
    )
    frame = f"{chunk:x}\r\n".encode() + b"7" * chunk + b"\r\n"
    sent, done = [0], threading.Event()

    def feed() -> None:
        try:
            while sent[0] < total and not done.is_set():
                sock.sendall(frame)
                sent[0] += chunk
            if sent[0] >= total:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server closed the connection: it stopped reading
            pass

    start = time.perf_counter()
    feeder = threading.Thread(target=feed)
    feeder.start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        seconds = time.perf_counter() - start
        head_part, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head_part, re.I).group(1))
        while len(body) < length:
            piece = sock.recv(65536)
            if not piece:
                break
            body += piece
    finally:
        done.set()
        feeder.join(timeout=60)
        sock.close()
    return {
        "status": int(head_part.split()[1]),
        "head": head_part.decode("latin-1"),
        "body": json.loads(body),
        "sent": sent[0],
        "seconds": seconds,
    }


def test_a_chunked_body_over_the_limit_gets_413_without_the_rest_being_read(server):
    port, _ = server
    total = 200 * 2**20
    out = chunked_upload(
        port, "/predict/ohlcv", {"X-API-Key": KEY, "Content-Type": "application/json"}, total
    )
    print(
        f"413 after {out['seconds'] * 1000:.0f} ms, {out['sent'] / 2**20:.1f} MiB of "
        f"{total / 2**20:.0f} MiB sent"
    )
    assert out["status"] == 413, out
    assert f"over the limit of {LIMIT_MB * 2**20:,} bytes" in out["body"]["error"]
    assert "connection: close" in out["head"].lower()
    # stopped at the limit: what got in is the limit plus socket buffers, not 200 MB
    assert out["sent"] < 4 * LIMIT_MB * 2**20, out["sent"]


def test_the_api_key_is_checked_before_the_body_is_read(server):
    port, _ = server
    total = 100 * 2**20
    for headers in ({}, {"X-API-Key": "wrong"}):
        out = chunked_upload(port, "/predict/xray", {**headers, "Content-Type": "image/png"}, total)
        print(f"401 after {out['seconds'] * 1000:.0f} ms, {out['sent'] / 2**20:.1f} MiB sent")
        assert out["status"] == 401, out
        assert "API key" in out["body"]["error"]
        assert out["sent"] < 4 * LIMIT_MB * 2**20, out["sent"]


def test_with_a_key_set_only_the_probes_are_open(server):
    port, _ = server
    for path in ("/health", "/ready"):
        assert call(port, "GET", path)[0] == 200, path
    for path in ("/models", "/metrics", "/openapi.json", "/docs", "/predict/xray", "/nowhere"):
        status, _, body = call(port, "GET", path)
        assert status == 401 and b"API key" in body, (path, status, body)
        keyed = call(port, "GET", path, headers={"Authorization": f"Bearer {KEY}"})[0]
        assert keyed == {"/predict/xray": 405, "/nowhere": 404}.get(path, 200), path


def test_public_routes_open_what_they_name(flow_project):
    from fastapi.testclient import TestClient

    from nnpipe.serving.api import ServeSettings, create_app

    settings = ServeSettings(
        tracking_uri=f"sqlite:///{flow_project / 'mlflow.db'}",
        models={"xray": "xray-classifier"},
        alias="challenger",
        api_key=KEY,
        public_routes=("docs", "metrics"),
        poll_seconds=3600,
    )
    with TestClient(create_app(settings)) as api:
        assert api.get("/openapi.json").status_code == api.get("/docs").status_code == 200
        assert api.get("/metrics").status_code == 200
        assert api.get("/models").status_code == 401
        schema = api.get("/openapi.json").json()
        assert "401" in schema["paths"]["/predict/xray"]["post"]["responses"]
        assert "401" in schema["paths"]["/models"]["get"]["responses"]
        assert "401" not in schema["paths"]["/metrics"]["get"]["responses"]


def test_answers_carry_no_server_header_and_no_python_repr(server):
    port, _ = server
    status, headers, _ = call(port, "GET", "/health")
    assert status == 200 and "server" not in headers, headers
    # PIL's own message for such bytes names its `<_io.BytesIO object at 0x...>`
    for body in (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"GIF89a" + b"\0" * 20, b"\xff\xd8\xff"):
        status, _, text = call(
            port, "POST", "/predict/xray", body, {"Content-Type": "image/png", "X-API-Key": KEY}
        )
        assert status == 422, text
        assert not re.search(rb"object at 0x|<_io\.|Traceback", text), text


def test_a_client_that_leaves_mid_upload_is_no_500_and_no_traceback(server):
    port, log = server
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(
            "POST /predict/xray HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            f"X-API-Key: {KEY}\r\nContent-Length: 5000000\r\n\r\n".encode()
            + b"\0" * 100_000
        )
        time.sleep(0.3)
        sock.close()
    deadline = time.monotonic() + 30
    while 'endpoint="/predict/xray",status="499"' not in (
        metrics := call(port, "GET", "/metrics", headers={"X-API-Key": KEY})[2].decode()
    ):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.2)
    assert 'status="500"' not in metrics
    assert "Traceback" not in log.read_text()
    assert call(port, "GET", "/health")[0] == 200


@pytest.mark.parametrize(
    "path, body, message",
    [
        (
            "/predict/xray",
            {"image": "png40000x1"},
            "40,000 x 1 pixels (padded to a square: 1,600,000,000 pixels) is over the limit",
        ),
        ("/predict/xray", {"image": "png5000x5000"}, "5,000 x 5,000 pixels is over the limit"),
        ("/predict", {"data": [[0] * 30000]}, "List should have at most 4096 items"),
        (
            "/predict/ohlcv/batch",
            {"windows": [[[1.0] * 5] * 10] * 257},
            "List should have at most 256 items",
        ),
        (
            "/predict/ohlcv",
            {"data": [[1, 2, 0.5, 1.5, 100]] * 10001},
            "List should have at most 10000 items",
        ),
        (
            "/predict/ohlcv",
            {"data": [[1e300, 2, 0.5, 1.5, 100]] * 20},
            "less than or equal to 1000000000",
        ),
        ("/predict/ohlcv", {"data": [[1, 2, -0.5, 1.5, 100]] * 20}, "greater than 0"),
        ("/predict/ohlcv", {"data": [[1, 0.5, 2, 1.5, 100]] * 20}, "ohlc_inconsistent"),
        (
            "/predict/ohlcv",
            {"bars": [{"Open": 1, "High": 0.5, "Low": 2, "Close": 1.5, "Volume": 1}] * 20},
            "High 0.5 < Low 2",
        ),
        (
            "/predict/ohlcv/batch",
            {"windows": [[[1.0] * 5] * 10, [[1.0] * 5]]},
            "rows of one length",
        ),
        (
            "/predict/ohlcv/batch",
            {"windows": [[BAR] * 10, [BAR] * 3 + [[1, 0.5, 2, 1.5, 100]] + [BAR] * 6]},
            "`windows[1]` (10 rows) has 1 violation(s) of rule(s) ['ohlc_inconsistent']",
        ),
        (
            "/predict/ohlcv/batch",
            {"windows": [[BAR] * 9 + [[1, 2, -0.5, 1.5, 100]]]},
            "row 9: price_not_positive: prices must be > 0: Low=-0.5",
        ),
        (
            "/predict/ohlcv/batch",
            {"windows": [[[2e9, 3e9, 1e9, 2e9, 100]] * 10]},
            "`windows[0]` row 0: Open must be a price > 0 and at most 1e+09",
        ),
        (
            "/predict/ohlcv?series=",
            {"data": [[1, 2, 0.5, 1.5, 100]] * 20},
            "`query.series`: String should have at least 1 character",
        ),
        (
            "/predict/ohlcv?series=NOPE",
            {"data": [[1, 2, 0.5, 1.5, 100]] * 20},
            "series 'NOPE' is not served",
        ),
    ],
)
def test_oversized_and_absurd_inputs_get_a_4xx_that_says_why(server, path, body, message):
    port, _ = server
    if "image" in body:  # a PNG whose header declares the size: tiny on the wire
        w, h = map(int, body["image"][3:].split("x"))
        import base64

        body = {"image": base64.b64encode(png(np.zeros((h, w), np.uint8))).decode()}
    start = time.perf_counter()
    status, _, text = call(
        port,
        "POST",
        path,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "X-API-Key": KEY},
    )
    assert status in (404, 413, 422), text
    assert message in json.loads(text)["error"], text
    assert time.perf_counter() - start < 30


def test_a_requests_pixel_budget_counts_the_padded_squares(server):
    """Five PNGs of 4096 x 1 (a few hundred bytes each) decode to 20 k pixels, but pad mode
    makes each a 4096 x 4096 canvas: 84 M pixels, over serve.max_batch_pixels (four such
    canvases), refused from their headers; four are served."""
    port, _ = server
    import base64

    image = base64.b64encode(png(np.zeros((1, 4096), np.uint8))).decode()
    answers = {
        count: call(
            port,
            "POST",
            "/predict/xray/batch",
            json.dumps({"images": [image] * count}).encode(),
            {"Content-Type": "application/json", "X-API-Key": KEY},
        )
        for count in (4, 5)
    }
    assert answers[4][0] == 200, answers[4][2]
    assert len(json.loads(answers[4][2])["predictions"]) == 4
    assert answers[5][0] == 422, answers[5][2]
    error = json.loads(answers[5][2])["error"]
    assert "over 67,108,864 pixels in all" in error and "padded to 16,777,216" in error, error


def test_health_answers_while_the_worst_allowed_request_is_decoded(server):
    """The worst X-ray request the limits allow: images at the largest side and the
    per-request pixel budget, 16-bit (the costliest mode to convert), as one batch."""
    port, _ = server
    side = 4096
    ramp = (np.add.outer(np.arange(side), np.arange(side)) * 7 % 65536).astype(np.uint16)
    image = png(ramp)
    fields = [(f"{i}.png", image) for i in range(4)]  # 4 x 4096^2 = serve.max_batch_pixels
    boundary = "nnpipe-limits"
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{n}"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + data
            + b"\r\n"
            for n, data in fields
        )
        + f"--{boundary}--\r\n".encode()
    )
    result: dict = {}

    def worst() -> None:
        start = time.perf_counter()
        result["status"], _, result["body"] = call(
            port,
            "POST",
            "/predict/xray/batch",
            body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-API-Key": KEY},
        )
        result["seconds"] = time.perf_counter() - start

    thread = threading.Thread(target=worst)
    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    thread.start()
    time.sleep(0.2)  # the upload (a few MB on loopback) is in; decoding has started
    latencies = []
    while thread.is_alive():
        start = time.perf_counter()
        probe.request("GET", "/health")
        assert probe.getresponse().read() == b'{"status":"ok"}'
        latencies.append(time.perf_counter() - start)
        time.sleep(0.05)
    thread.join()
    probe.close()
    assert result["status"] == 200, result
    assert len(json.loads(result["body"])["predictions"]) == 4
    median = statistics.median(latencies)
    print(
        f"worst request {result['seconds']:.2f} s; /health median {median * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} calls"
    )
    assert len(latencies) >= 3, (result["seconds"], latencies)
    assert median < 0.1, latencies


def test_a_non_loopback_host_without_a_key_refuses_to_start(flow_project, monkeypatch):
    monkeypatch.delenv("NNPIPE_API_KEY", raising=False)
    done = nnpipe(
        flow_project,
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        "--domain",
        "xray",
        check=False,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "NNPIPE_API_KEY" in done.stderr and "--allow-no-api-key" in done.stderr
    assert "Traceback" not in done.stderr


# schemathesis' coverage phase alone outlasts any example bound: the run is bounded by
# time (20 s: about 900 cases on 2 cores); NNPIPE_FUZZ_SECONDS=300 for a longer hunt
FUZZ_SECONDS = os.environ.get("NNPIPE_FUZZ_SECONDS", "20")


def test_schemathesis_finds_no_server_error_and_no_undeclared_status(server, tmp_path):
    """schemathesis (its CLI, the installed 4.x) over the served app's own /openapi.json:
    the examples, coverage and fuzzing phases, every check, bounded examples and time.
    Two expectations are widened, each for a reason: 422 is an answer to schema-valid
    data too, since what a JSON schema cannot say is still checked (the look-back length,
    High >= Low, equal row lengths, a decodable image); and 413 is a refusal of data too
    large for the body limit."""
    port, log = server
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[checks.positive_data_acceptance]\n"
        'expected-statuses = ["2xx", "401", "404", "413", "415", "422"]\n'
        "[checks.negative_data_rejection]\n"
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", '
        '"415", "422", "428", "429"]\n'
    )
    report = tmp_path / "report.json"
    cmd = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--checks",
        "all",
        "-H",
        f"X-API-Key: {KEY}",
        "--max-examples",
        "10",
        "--seed",
        "14",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--max-time",
        FUZZ_SECONDS,
        "--no-color",
        "--output-truncate",
        "true",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    print(summary)
    result = json.loads(report.read_text())
    assert result["operations"]["tested"] >= 9, summary
    assert result["test_cases"]["generated"] > 100, summary
    # no 5xx (not_a_server_error), no status the schema does not declare
    # (status_code_conformance), and nothing else either
    assert result["failures"] == [] and result["errors"] == [], done.stdout[-6000:]
    assert done.returncode == 0, done.stdout[-6000:]
    assert "Traceback" not in log.read_text()
