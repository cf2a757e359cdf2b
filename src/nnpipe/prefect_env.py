"""Prefect settings for running flows from nnpipe's commands; the user's environment wins.

Called by the commands before Prefect is first imported (Prefect reads these when it
loads its settings), never at import time.
"""

from __future__ import annotations

import logging
import os

from nnpipe.ports import free_port

log = logging.getLogger(__name__)


def prefect_defaults() -> None:
    """Without a Prefect server configured, Prefect starts a temporary local one; on a busy
    2-core machine it can need more than Prefect's default 20 s to come up."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "nnpipe")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no calls home
    # nnpipe's own closing lines (summary, errors) come after the flow run has ended
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


def start_temporary_server() -> int | None:
    """Start Prefect's temporary server now, as Prefect would on the first flow run when
    no server is configured, and tie its life to this process: a watchdog process (see
    :mod:`nnpipe.watchdog`) stops it, and whatever it started, if this process dies
    without running Prefect's ``atexit`` stop (``kill -9``). Returns its pid, or None
    when a server is configured (PREFECT_API_URL)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the instance Prefect's clients use
    if server.port is None:
        # Prefect draws the port from 8000-8999 and checks it seconds before uvicorn
        # binds it; two runs (or tests) drawing the same port make the loser's server
        # fail its start-up with a traceback on the console before Prefect retries
        server.port = free_port()
    server.start()
    if server.server_process is None:
        return None
    from nnpipe.watchdog import stop_with_me

    pid = server.server_process.pid
    stop_with_me(pid)
    log.debug("temporary Prefect server pid %d, watched", pid)
    return pid


def prefect_api_url() -> str | None:
    """The API the flows of this process talk to, for the processes it starts: the
    configured server's (PREFECT_API_URL), else the temporary one started here, if any."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return str(PREFECT_API_URL.value())
    server = SubprocessASGIServer()
    return server.api_url if server.running else None
