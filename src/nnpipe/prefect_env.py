"""Prefect settings for running flows from nnpipe's commands; the user's environment wins.

Called by the commands before Prefect is first imported (Prefect reads these when it
loads its settings), never at import time.
"""

from __future__ import annotations

import os


def prefect_defaults() -> None:
    """Without a Prefect server configured, Prefect starts a temporary local one; on a busy
    2-core machine it can need more than Prefect's default 20 s to come up."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "nnpipe")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no calls home
    # nnpipe's own closing lines (summary, errors) come after the flow run has ended
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
