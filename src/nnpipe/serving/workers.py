"""Work whose cost a client chooses (decoding images, parsing a JSON body, running a model)
off the event loop, in worker threads: at most ``serve.decode_threads`` at once across the
server, so a slow request never holds up ``/health`` or another client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread


class Workers:
    def __init__(self, size: int) -> None:
        self.size = size
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread, when one of the ``size`` is free."""
        if self._limiter is None:  # made on the loop that uses it
            self._limiter = anyio.CapacityLimiter(self.size)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)
