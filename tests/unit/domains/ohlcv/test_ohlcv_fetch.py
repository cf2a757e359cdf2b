"""fetch_url against a real HTTP server on loopback: atomic writes, what is retried."""

import http.server
import socket
import threading
import types
from pathlib import Path

import pytest

from nnpipe import download
from nnpipe.domains.ohlcv.sources import OhlcvDataError, fetch_url

BODY = b",Open,High,Low,Close,Volume\n2004-08-19,100,104.06,95.96,100.34,22351900\n"


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record the backoff instead of waiting it out (keeps the tests fast)."""
    waited: list[float] = []
    monkeypatch.setattr(download, "time", types.SimpleNamespace(sleep=waited.append))
    return waited


@pytest.fixture
def server(tmp_path):
    """Serves files from a folder; ``/flaky.csv`` fails with 503 on its first request."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "goog.csv").write_bytes(BODY)
    (root / "flaky.csv").write_bytes(BODY)
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            if self.path == "/flaky.csv" and hits.count(self.path) == 1:
                self.send_error(503, "busy")
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_download_writes_the_file_once_and_leaves_no_temporary(tmp_path, server, sleeps):
    base, hits = server
    dest = tmp_path / "data" / "goog.csv"
    assert fetch_url(f"{base}/goog.csv", dest) == dest
    assert dest.read_bytes() == BODY
    assert hits == ["/goog.csv"] and sleeps == [] and leftovers(dest.parent) == []


def test_a_404_is_not_retried_and_keeps_the_old_file(tmp_path, server, sleeps):
    base, hits = server
    dest = tmp_path / "goog.csv"
    dest.write_bytes(b"old")
    with pytest.raises(OhlcvDataError, match="HTTP 404"):
        fetch_url(f"{base}/missing.csv", dest, attempts=3)
    assert hits == ["/missing.csv"] and sleeps == []
    assert dest.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_a_server_error_is_retried_with_backoff(tmp_path, server, sleeps):
    base, hits = server
    dest = tmp_path / "flaky.csv"
    fetch_url(f"{base}/flaky.csv", dest, attempts=3)
    assert hits == ["/flaky.csv", "/flaky.csv"] and sleeps == [2.0]
    assert dest.read_bytes() == BODY


def test_a_closed_port_is_retried_then_fails_clearly(tmp_path, sleeps):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "x.csv"
    with pytest.raises(OhlcvDataError, match="after 4 attempts"):
        fetch_url(f"http://127.0.0.1:{port}/x.csv", dest, timeout=2, attempts=4)
    assert sleeps == [2.0, 4.0, 8.0]  # doubling, and no sleep after the last attempt
    assert not dest.exists() and leftovers(tmp_path) == []


def test_backoff_is_capped_at_ten_seconds(tmp_path, sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OhlcvDataError):
        fetch_url(f"http://127.0.0.1:{port}/x.csv", tmp_path / "x.csv", timeout=2, attempts=5)
    assert sleeps == [2.0, 4.0, 8.0, 10.0]


def test_only_http_urls_are_fetched(tmp_path):
    with pytest.raises(OhlcvDataError, match="only http:// and https://"):
        fetch_url("file:///etc/passwd", tmp_path / "x.csv")
