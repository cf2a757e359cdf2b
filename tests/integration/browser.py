"""Debian's Chromium driven by Playwright, as the browser tests use it: headless, with
nothing that calls home, every request outside the allowed origins recorded.

Chromium comes from `make system-deps` (Debian's package); never `playwright install`.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# headless, and nothing that calls home: no updates, sync, QUIC or background fetches
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_page(
    allowed: tuple[str, ...], timeout_ms: float = 90_000, viewport: tuple[int, int] = (1800, 1100)
) -> Iterator:
    """One page in a new profile; ``page.external`` lists every request whose URL starts
    with none of ``allowed`` (``data:`` and ``blob:`` are always allowed)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="nnpipe-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.external = []  # type: ignore[attr-defined]
        page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith((*allowed, "data:", "blob:"))
                else page.external.append(r.url)
            ),
        )
        try:
            yield page
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
