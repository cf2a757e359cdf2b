"""Downloading a file: atomically, with retries where retrying can help.

One implementation for every source that reads from a URL (MedMNIST archives, price CSVs).
"""

from __future__ import annotations

import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from nnpipe.errors import NnpipeError

log = logging.getLogger(__name__)


def fetch(
    url: str,
    dest: Path,
    *,
    error: type[NnpipeError],
    hint: str,
    timeout: float = 60.0,
    attempts: int = 3,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Download ``url`` (http or https) to ``dest``; raise ``error`` with ``hint`` on failure.

    The body goes to a temporary sibling renamed onto ``dest`` only when complete and, with
    ``check``, accepted (``check`` raises to reject it; that is not retried, the same bytes
    would come back), so an interrupted download never leaves a file that looks valid.
    Connection failures, time-outs and HTTP 5xx are retried with backoff (2, 4, 8, at most
    10 seconds); HTTP 4xx is not, since asking again gets the same answer.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise error(f"cannot fetch {url!r}: only http:// and https:// URLs are supported; {hint}")
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "nnpipe"})
    for attempt in range(1, attempts + 1):
        log.info("downloading %s (attempt %d/%d)", url, attempt, attempts)
        try:
            return _download_once(request, dest, timeout, check)
        except urllib.error.HTTPError as exc:
            exc.close()  # the error holds the response open
            _raise_unless_retried(exc, url, attempt, attempts, error, hint)
            log.warning("download of %s failed (HTTP %d); retrying", url, exc.code)
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            TimeoutError,
            ConnectionError,
        ) as exc:
            if attempt == attempts:
                raise error(
                    f"could not download {url} after {attempts} attempts ({exc}). "
                    f"Check the network and the URL, or {hint}"
                ) from exc
            log.warning("download of %s failed (%s); retrying", url, exc)
        time.sleep(min(2.0**attempt, 10.0))
    raise AssertionError("unreachable")


def _download_once(
    request: urllib.request.Request,
    dest: Path,
    timeout: float,
    check: Callable[[Path], None] | None,
) -> Path:
    """Write the body to a temporary sibling of ``dest``, check it, rename it onto ``dest``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(request, timeout=timeout) as resp,
        ):
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        if check is not None:
            check(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a data file is ordinarily readable
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _raise_unless_retried(
    exc: urllib.error.HTTPError,
    url: str,
    attempt: int,
    attempts: int,
    error: type[NnpipeError],
    hint: str,
) -> None:
    """Raise ``error`` for an HTTP 4xx, or a 5xx on the last attempt; return to retry."""
    if exc.code < 500:  # 4xx: the URL (or access to it) is wrong, not the network
        raise error(
            f"could not download {url}: HTTP {exc.code} {exc.reason}. Check the URL, or {hint}"
        ) from None
    if attempt == attempts:
        raise error(
            f"could not download {url} after {attempts} attempts: HTTP "
            f"{exc.code} {exc.reason}. The server is failing; try again "
            f"later, or {hint}"
        ) from exc
