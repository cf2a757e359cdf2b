"""Errors a user can fix, and how entry points report them.

Every such error derives from :class:`NnpipeError` and carries a message that says what
was wrong and how to fix it; entry points print that message alone (no traceback) and exit
with status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

log = logging.getLogger("nnpipe")


class NnpipeError(Exception):
    """Base of the errors caused by input (params, data, missing outputs), not by bugs."""


class RefusedModelError(NnpipeError):
    """A model file or deploy folder that nnpipe did not write as it is (a format it never
    writes, a path outside its folder, a changed file, code inside): never loaded."""


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines with time and origin; called by entry points, never on import.

    A flow run in a worker's or ``nnpipe schedule``'s subprocess runs no entry point: there
    :func:`nnpipe.flow_tasks.send_nnpipe_logs_to_prefect` sets the level (TensorFlow's C++
    log level is :mod:`nnpipe.keras_env`'s, in every process).
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level,
            datefmt="%H:%M:%S",
            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        )
    logging.getLogger("nnpipe").setLevel(level)
    for chatty in ("httpx", "httpcore"):  # one line per Prefect API call otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)


@contextlib.contextmanager
def report_errors() -> Iterator[None]:
    """Turn an :class:`NnpipeError` into one clear log line and exit status 2."""
    try:
        yield
    except NnpipeError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
