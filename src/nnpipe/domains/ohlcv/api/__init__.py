"""The OHLCV domain's part of ``nnpipe serve`` (the domain's serving layer, beside
:mod:`nnpipe.domains.ohlcv.predictor` and :mod:`nnpipe.domains.ohlcv.batch`: it may import
:mod:`nnpipe.serving`; nothing in the domain's core or stages imports it):
:mod:`.inputs` bounds and checks what a request carries, :mod:`.routes` answers it."""

from nnpipe.domains.ohlcv.api.routes import api_router

__all__ = ["api_router"]
