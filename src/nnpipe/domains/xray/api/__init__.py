"""The X-ray domain's part of ``nnpipe serve`` (the domain's serving layer, beside
:mod:`nnpipe.domains.xray.predictor` and :mod:`nnpipe.domains.xray.batch`: it may import
:mod:`nnpipe.serving`; nothing in the domain's core or stages imports it):
:mod:`.inputs` reads and bounds what a request carries, :mod:`.routes` answers it."""

from nnpipe.domains.xray.api.routes import api_router

__all__ = ["api_router"]
