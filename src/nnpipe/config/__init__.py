"""Typed, validated parameters: ``params.yaml`` is the one source of truth.

Everything is checked once, on load: unknown keys and wrong types fail at once with the
dotted key's name, not an hour into training. Command-line overrides use the dotted keys of
``dvc exp run -S`` (``xray.train.epochs=20``) and go through the same validation.

Modules: :mod:`~nnpipe.config.base` (the strict base model, :class:`ParamsError`),
:mod:`~nnpipe.config.common` (sections every project or every domain has),
:mod:`~nnpipe.config.search_space` (tuning's search space), :mod:`~nnpipe.config.loading`
(read, override, validate, write back) and :mod:`~nnpipe.config.model` (:class:`Params`,
built from the domain registry). A domain's own sections are in
``nnpipe.domains.<name>.params``; read one through the domain, ``XRAY.section(params)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnpipe.config.base import Fraction, OpenFraction, ParamsError, PositiveInt, Strict
from nnpipe.config.common import (
    ALL_VARIANTS,
    AttentionWidth,
    Compress,
    DaskCluster,
    DomainSection,
    MlflowParams,
    Paths,
    Promote,
    Pruning,
    Serve,
    Techniques,
    Tune,
    Variant,
)
from nnpipe.config.loading import (
    PARAMS_FILE,
    apply_overrides,
    dump_params,
    load_params,
    parse_override,
    read_params_file,
    validate_params,
    write_overrides,
)
from nnpipe.config.search_space import (
    UNSEARCHABLE,
    SearchDim,
    check_search_space,
    get_value,
    searchable_keys,
    with_values,
)

if TYPE_CHECKING:
    from nnpipe.config.model import Params


def __getattr__(name: str) -> Any:
    """``Params`` is built from the domain registry, whose domains' params modules import
    this package: it is made on first use, so either can be imported first."""
    if name == "Params":
        from nnpipe.config.model import Params

        return Params
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALL_VARIANTS",
    "PARAMS_FILE",
    "UNSEARCHABLE",
    "AttentionWidth",
    "Compress",
    "DaskCluster",
    "DomainSection",
    "Fraction",
    "MlflowParams",
    "OpenFraction",
    "Params",
    "ParamsError",
    "Paths",
    "PositiveInt",
    "Promote",
    "Pruning",
    "SearchDim",
    "Serve",
    "Strict",
    "Techniques",
    "Tune",
    "Variant",
    "apply_overrides",
    "check_search_space",
    "dump_params",
    "get_value",
    "load_params",
    "parse_override",
    "read_params_file",
    "searchable_keys",
    "validate_params",
    "with_values",
    "write_overrides",
]
