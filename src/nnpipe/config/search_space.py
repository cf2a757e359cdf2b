"""The tuning search space: which train parameters a search may set, and a check, on load,
that every searched value is a valid one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from nnpipe.config.base import Strict


class SearchDim(Strict):
    """One searched hyper-parameter: ``choice`` (a list of values, lists allowed, e.g. the
    filters per block) or ``range`` (low, high; integer or float as the train parameter
    is, with an optional ``step`` and ``sampling: log`` for rates)."""

    choice: Annotated[list[Any], Field(min_length=1)] | None = None
    range: tuple[float | int, float | int] | None = None
    step: Annotated[float, Field(gt=0)] | None = None
    sampling: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _one_kind(self) -> SearchDim:
        if (self.choice is None) == (self.range is None):
            raise ValueError("give exactly one of `choice: [...]` or `range: [low, high]`")
        if self.range is not None:
            low, high = self.range
            if not low < high:
                raise ValueError(f"range [{low}, {high}] must have low < high")
            if self.sampling == "log" and low <= 0:
                raise ValueError(f"sampling: log needs a positive low end, got {low}")
        elif self.step is not None or self.sampling != "linear":
            raise ValueError("step and sampling apply to a range, not to a choice")
        return self

    def candidates(self) -> list[Any]:
        """The values that must each be a valid train parameter: every choice, or both ends."""
        return list(self.choice) if self.choice is not None else list(self.range or ())


# what a trial's budget sets: searching it would fight the tuner
UNSEARCHABLE = ("epochs",)


def searchable_keys(train: BaseModel) -> list[str]:
    """Train parameters a search may set: top-level ones, and an architecture's sizes as
    dotted keys (``vit.depth``)."""
    keys = []
    for name in type(train).model_fields:
        if name in UNSEARCHABLE:
            continue
        sub = getattr(train, name)
        if isinstance(sub, BaseModel):
            keys += [f"{name}.{inner}" for inner in type(sub).model_fields]
        else:
            keys.append(name)
    return keys


def get_value(model: BaseModel, key: str) -> Any:
    """A parameter by its (dotted) key."""
    for part in key.split("."):
        model = getattr(model, part)
    return model


def with_values(model: BaseModel, values: dict[str, Any]) -> Any:
    """A copy of ``model`` with (dotted) keys set, validated as on load."""
    data = model.model_dump()
    for key, value in values.items():
        *parents, last = key.split(".")
        target = data
        for part in parents:
            target = target[part]
        target[last] = value
    return type(model).model_validate(data)


def check_search_space(train: BaseModel, space: dict[str, SearchDim]) -> None:
    """Every searched key is a train parameter and every candidate value a valid one, so
    a typo in the search space fails on load, not after an hour of trials."""
    fields = searchable_keys(train)
    for key, dim in space.items():
        if key not in fields:
            raise ValueError(
                f"tune.search_space.{key} is not a train parameter that can be "
                f"searched; searchable: {', '.join(fields)}"
            )
        for value in dim.candidates():
            try:
                with_values(train, {key: value})
            except ValidationError as exc:
                problem = "; ".join(e["msg"] for e in exc.errors())
                raise ValueError(
                    f"tune.search_space.{key}: {value!r} is not a valid train.{key} ({problem})"
                ) from None
