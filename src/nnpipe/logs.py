"""How nnpipe's entry points set up logging (library modules only log, through
``logging.getLogger(__name__)``; nothing is configured on import)."""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(level: int = logging.INFO, tag: str = "") -> None:
    """Log lines with time and origin; called by entry points, never on import.

    A flow run in a worker's or ``nnpipe schedule``'s subprocess runs no entry point: there
    :func:`nnpipe.flow_tasks.send_nnpipe_logs_to_prefect` sets the level (TensorFlow's C++
    log level is :mod:`nnpipe.keras_env`'s, in every process). ``tag`` (a domain's name)
    marks each line of a process whose lines interleave with another's.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level,
            datefmt="%H:%M:%S",
            format=f"%(asctime)s %(levelname)-7s {f'({tag}) ' if tag else ''}%(name)s: %(message)s",
        )
    logging.getLogger("nnpipe").setLevel(level)
    for chatty in ("httpx", "httpcore"):  # one line per Prefect API call otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
