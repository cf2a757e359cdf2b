"""Errors a user can fix, and how entry points report them (their logging is set up by
:func:`nnpipe.logs.configure_logging`, importable from here too).

Every such error derives from :class:`NnpipeError` and carries a message that says what
was wrong and how to fix it; entry points print that message alone (no traceback) and exit
with status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from nnpipe.logs import configure_logging

__all__ = ["NnpipeError", "RefusedModelError", "configure_logging", "report_errors"]

log = logging.getLogger("nnpipe")


class NnpipeError(Exception):
    """Base of the errors caused by input (params, data, missing outputs), not by bugs."""


class RefusedModelError(NnpipeError):
    """A model file or deploy folder that nnpipe did not write as it is (a format it never
    writes, a path outside its folder, a changed file, code inside): never loaded."""


@contextlib.contextmanager
def report_errors() -> Iterator[None]:
    """Turn an :class:`NnpipeError` into one clear log line and exit status 2."""
    try:
        yield
    except NnpipeError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
