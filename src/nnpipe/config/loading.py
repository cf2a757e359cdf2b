"""Reading params.yaml, applying ``-S key=value`` overrides, validating, and writing the
overrides back (as ``dvc exp run -S`` does), with errors that name each dotted key."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from nnpipe.config.base import ParamsError
from nnpipe.io import atomic_write_text

if TYPE_CHECKING:
    from nnpipe.config.model import Params

PARAMS_FILE = "params.yaml"


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = [f"{origin} is not valid:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (a typo? see params.yaml for the known keys)")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {key}: {err['msg']}{shown}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-parsed value (as ``dvc exp run -S``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ParamsError(f"override {text!r} is not of the form key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ParamsError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted overrides set; unknown keys fail in validation."""
    result = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ParamsError(f"override {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return result


def validate_params(raw: Any, origin: str = PARAMS_FILE) -> Params:
    """Validate a mapping into :class:`Params`, or raise :class:`ParamsError` naming each key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{origin} must be a mapping of sections, got {type(raw).__name__}")
    from nnpipe.config.model import Params  # built from the domain registry, on first use

    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_format_errors(exc, origin)) from None


def read_params_file(path: str | os.PathLike[str] = PARAMS_FILE) -> dict[str, Any]:
    """Read the raw YAML mapping of a params file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found; run from the project root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    if raw is None:  # DVC reads the same file and would fail on every stage's params
        raise ParamsError(
            f"{path} is empty: restore it (`git checkout {path.name}`); every "
            "stage in dvc.yaml reads its sections"
        )
    return raw


def load_params(
    path: str | os.PathLike[str] = PARAMS_FILE, overrides: list[str] | None = None
) -> Params:
    """Load, override and validate the params file."""
    raw = apply_overrides(read_params_file(path), overrides or [])
    suffix = f" with overrides {overrides}" if overrides else ""
    return validate_params(raw, origin=f"{path}{suffix}")


def write_overrides(path: str | os.PathLike[str], overrides: list[str]) -> Params:
    """Write validated overrides into the params file, keeping its comments and order.

    This is what ``dvc exp run -S`` does to the workspace: the file on disk stays the
    record of what ran, so ``dvc.lock`` and ``dvc status`` agree with every run.
    """
    from ruamel.yaml import YAML  # DVC's own YAML library: round-trips comments

    params = load_params(path, overrides)  # validates before anything is written
    ryaml = YAML()
    ryaml.preserve_quotes = True
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        doc = ryaml.load(fh)
    for text in overrides:
        keys, value = parse_override(text)
        node = doc
        for part in keys[:-1]:
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
        node[keys[-1]] = value
    buf = io.StringIO()
    ryaml.dump(doc, buf)
    atomic_write_text(path, buf.getvalue())
    return params


def dump_params(params: Params) -> str:
    """The resolved params as YAML (every default made explicit)."""
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False)
