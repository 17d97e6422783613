"""Typed, validated configuration objects with errors that name the key and fix.

Every config object in the project (a driver instance's options, the gateway file) is a
:class:`ConfigModel` (:mod:`edgesdk.configmodel`): frozen, unknown keys forbidden, declared
with :func:`Field` as in pydantic. :func:`parse` turns validation errors into one
:class:`~edgesdk.errors.ConfigError` that names the file, the dotted key and what to do
about it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

from edgesdk.configmodel import (
    AfterValidator,
    BeforeValidator,
    ConfigModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
    validate_as,
)
from edgesdk.errors import ConfigError

__all__ = [
    "AfterValidator",
    "BeforeValidator",
    "ConfigModel",
    "Field",
    "ValidationError",
    "ValidationInfo",
    "field_validator",
    "model_validator",
    "parse",
    "read_toml",
    "validate_as",
]

M = TypeVar("M", bound="ConfigModel")


def _dotted(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = [prefix] if prefix else []
    for p in loc:
        parts.append(f"[{p}]" if isinstance(p, int) else str(p))
    return ".".join(parts).replace(".[", "[")


def _fix_for(model: type[ConfigModel], err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    loc = tuple(err.get("loc", ()))
    if kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        hint = f"; known keys here: {', '.join(known)}" if known else ""
        return f"remove this key or correct its spelling{hint}"
    if kind == "missing":
        return "add this key"
    desc = _field_description(model, loc)
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        return f"use one of {ctx['expected']}"
    return desc or "correct the value"


def _model_in(ann: Any) -> tuple[type[ConfigModel] | None, bool]:
    """The model an annotation holds, and whether it sits in a dict/list container."""
    if isinstance(ann, type) and issubclass(ann, ConfigModel):
        return ann, False
    origin = get_origin(ann)
    args = get_args(ann)
    if origin in (dict, Mapping) and len(args) == 2:
        return _model_in(args[1])[0], True
    if origin in (list, tuple) and args:
        return _model_in(args[0])[0], True
    for arg in args:  # Optional[Model]
        found, _ = _model_in(arg)
        if found is not None:
            return found, False
    return None, False


def _walk(model: type[ConfigModel], loc: tuple[int | str, ...]) -> type[ConfigModel] | None:
    current: type[ConfigModel] | None = model
    skip_key = False
    for part in loc:
        if current is None:
            return None
        if skip_key or isinstance(part, int):
            skip_key = False
            continue
        info = current.model_fields.get(str(part))
        if info is None:
            return None
        current, skip_key = _model_in(info.annotation)
    return current


def _known_keys(model: type[ConfigModel], loc: tuple[int | str, ...]) -> list[str]:
    sub = _walk(model, loc)
    return sorted(sub.model_fields) if sub is not None else []


def _field_description(model: type[ConfigModel], loc: tuple[int | str, ...]) -> str | None:
    if loc[-1:] == ("[key]",):  # a table's key: the field holding the table says what fits
        loc = loc[:-2]
    if not loc:
        return None
    parent = _walk(model, loc[:-1])
    last = loc[-1]
    if parent is None or isinstance(last, int):
        return None
    info = parent.model_fields.get(last)
    return info.description if info is not None else None


def parse(
    model: type[M],
    data: Mapping[str, Any],
    *,
    file: str | None = None,
    prefix: str = "",
) -> M:
    """Validate ``data`` as ``model``; raise :class:`ConfigError` naming the key and fix.

    ``prefix`` is the dotted path of ``data`` inside its file (``devices.panel1``), so the
    message points at the right key. When several keys are wrong, the first is named in
    ``key`` and all of them in the message.
    """
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        key = _dotted(prefix, tuple(first["loc"]))
        msg = first["msg"]
        if "input" in first and first["type"] not in ("missing",):
            msg = f"{msg} (got {first['input']!r})"
        if len(errors) > 1:
            others = "; ".join(
                f"{_dotted(prefix, tuple(e['loc']))}: {e['msg']}" for e in errors[1:]
            )
            msg = f"{msg} [also: {others}]"
        raise ConfigError(msg, file=file, key=key, fix=_fix_for(model, first)) from exc


_LINE_RE = re.compile(r"at line (\d+)")


def read_toml(text: str, file: str) -> dict[str, Any]:
    """Parse TOML text; any syntax problem is a :class:`ConfigError` naming file and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _LINE_RE.search(str(exc))
        raise ConfigError(
            f"not valid TOML: {exc}",
            file=file,
            line=int(m.group(1)) if m else None,
            fix="correct the TOML syntax at that line",
        ) from exc
    except RecursionError as exc:  # tomllib (Python < 3.14) recurses once per nesting level
        raise ConfigError(
            "not valid TOML: arrays or inline tables nested too deeply",
            file=file,
            fix="flatten the nesting",
        ) from exc
