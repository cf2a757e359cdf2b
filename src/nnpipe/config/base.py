"""The base of every params model: unknown keys are errors, booleans are refused in number
fields, loaded params are immutable; and the error every params problem raises."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from nnpipe.errors import NnpipeError

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
OpenFraction = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class ParamsError(NnpipeError, ValueError):
    """params.yaml or an override is wrong; the message names the key and the fix."""


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean (``bool``, ``bool | None``, ``Any``)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_takes_bool(arg) for arg in get_args(annotation))


def _has_bool(value: Any) -> bool:
    """Whether ``value`` is a boolean or a list holding one (a nested section is a mapping,
    checked by its own model)."""
    if isinstance(value, bool):
        return True
    return isinstance(value, (list, tuple)) and any(_has_bool(v) for v in value)


class Strict(BaseModel):
    """Base for every section: unknown keys are errors; loaded params are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads ``true`` as 1 for an int or float field: ``epochs: true`` would
        train one epoch. A boolean is accepted only where the field is a switch."""
        if info.field_name is not None and _has_bool(value):  # also inside lists: [true, 8]
            if not _takes_bool(cls.model_fields[info.field_name].annotation):
                raise ValueError(
                    f"a boolean ({str(value).lower()}) is not accepted here: "
                    "give a number or a value of the field's type"
                )
        return value
