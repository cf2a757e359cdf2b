"""The one registry of domains: adding a domain is its package, its params section and
one line here (then ``nnpipe dvc-yaml`` regenerates ``dvc.yaml``).

Each entry is a light declaration (see :mod:`nnpipe.domains.contract`); the order is the
order ``nnpipe run`` runs them in.
"""

from __future__ import annotations

from nnpipe.domains.contract import Domain
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.xray.domain import XRAY
from nnpipe.errors import NnpipeError

DOMAINS: dict[str, Domain] = {domain.name: domain for domain in (XRAY, OHLCV)}


class UnknownDomainError(NnpipeError, KeyError):
    """A domain name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def get_domain(name: str) -> Domain:
    """The registered domain ``name``, or a clear error naming the ones there are."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise UnknownDomainError(
            f"unknown domain {name!r}; registered: {', '.join(DOMAINS)} "
            "(src/nnpipe/domains/registry.py)"
        ) from None
