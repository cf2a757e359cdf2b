"""The whole of params.yaml as one model, built from the domain registry: the common
sections, then one section per registered domain (its ``params_model``, under its name),
then ``serve``. Adding a domain needs no edit here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, create_model

from nnpipe.config.base import Strict
from nnpipe.config.common import MlflowParams, Paths, Serve
from nnpipe.domains.registry import DOMAINS


class CommonParams(Strict):
    """The sections every project has, whatever its domains."""

    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42
    paths: Paths = Paths()
    mlflow: MlflowParams = MlflowParams()


def _serve_model(names: tuple[str, ...]) -> type[Serve]:
    """``serve`` with its domains narrowed to the registered names (so a typo fails on
    load naming the ones there are)."""
    name_type: Any = Literal.__getitem__(names)  # Literal["xray", "ohlcv", ...]
    domains: Any = Annotated[list[name_type], Field(min_length=1)]
    return create_model("Serve", __base__=Serve, domains=(domains, list(names)))


def _params_model() -> type[CommonParams]:
    serve = _serve_model(tuple(DOMAINS))
    sections: dict[str, Any] = {
        **{name: (domain.params_model, domain.params_model()) for name, domain in DOMAINS.items()},
        "serve": (serve, serve.model_validate({})),  # its default: every registered domain
    }
    return create_model("Params", __base__=CommonParams, __module__=__name__, **sections)


if TYPE_CHECKING:

    class Params(CommonParams):
        """The type checker's view: a domain's section is read through its declaration,
        ``XRAY.section(params) -> XrayParams`` (see nnpipe.domains.contract.Domain)."""

        serve: Serve

else:
    Params = _params_model()
