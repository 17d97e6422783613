"""Config models: declared the pydantic way, validated by this module.

A config model is a class of annotated fields (``port: int = Field(default=502, ge=1,
le=65535, description=...)``), frozen once built, unknown keys refused. Validation turns parsed TOML
(or keyword arguments) into the model or raises one :class:`ValidationError` listing every
wrong key with its location, a pydantic-compatible error type and message;
:func:`edgesdk.config.parse` turns that into a :class:`~edgesdk.errors.ConfigError` naming
the file, the key and the fix.

Written here rather than taken from pydantic, on purpose (docs/performance.md): the gateway
is a resident process held to 60 MB on a small box, and pydantic cost it 10.8 MB there
(7.7 MB importing pydantic and pydantic-core, the rest the schemas of its 60 models) for
work done once at start-up. msgspec, the light alternative (3.2 MB), reports a wrong value
inside a table as ``$.devices[...]``, dropping the device name an installer needs. This
module covers the typing subset our configs use and nothing more: ``int``, ``float``,
``str``, ``bool``, :class:`~pathlib.Path`, enums, ``Literal``, ``list``/``tuple``/``dict``,
unions (tagged by a discriminator key, or tried in turn), ``Annotated`` constraints and
validators, nested models. Values are coerced the way pydantic's lax mode does for the
types TOML can produce (an integral float or a numeric string for an ``int``, an ``int``
for a ``float``); anything else is an error.
"""

from __future__ import annotations

import enum
import inspect
import math
import operator
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Annotated,
    Any,
    ClassVar,
    Literal,
    TypeVar,
    Union,
    dataclass_transform,
    get_args,
    get_origin,
    get_type_hints,
)

__all__ = [
    "AfterValidator",
    "BeforeValidator",
    "ConfigModel",
    "Field",
    "FieldInfo",
    "ValidationError",
    "ValidationInfo",
    "field_validator",
    "model_validator",
    "validate_as",
]

Loc = tuple[int | str, ...]
Check = Callable[[Any, Loc], Any]  # a compiled validator: the value, or raise _InvalidError
M = TypeVar("M", bound="ConfigModel")
F = TypeVar("F")


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()
"""The default of a field that has none (pydantic's ``PydanticUndefined``)."""


# -- errors -------------------------------------------------------------------------------
def _error(
    kind: str, msg: str, loc: Loc, value: Any, ctx: dict[str, Any] | None = None
) -> dict[str, Any]:
    err: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        err["ctx"] = ctx
    return err


class _InvalidError(Exception):
    """Raised inside validation with every error found so far."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _fail(kind: str, msg: str, loc: Loc, value: Any, ctx: dict[str, Any] | None = None) -> Any:
    raise _InvalidError([_error(kind, msg, loc, value, ctx)])


class ValidationError(ValueError):
    """Input that does not fit a model: :meth:`errors` lists each problem as a dict with
    ``type``, ``loc`` (the path of keys and indexes), ``msg``, ``input`` and maybe ``ctx``,
    as pydantic's errors do."""

    def __init__(self, title: str, errors: list[dict[str, Any]]) -> None:
        self.title = title
        self._errors = errors
        super().__init__(str(self))

    def errors(self) -> list[dict[str, Any]]:
        return list(self._errors)

    def __str__(self) -> str:
        n = len(self._errors)
        lines = [f"{n} validation error{'s' if n != 1 else ''} for {self.title}"]
        for e in self._errors:
            lines.append(".".join(str(p) for p in e["loc"]) or "(root)")
            lines.append(f"  {e['msg']} [type={e['type']}, input_value={e['input']!r}]")
        return "\n".join(lines)


# -- declarations -------------------------------------------------------------------------
_CONSTRAINTS = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern")
_OPTIONS = ("alias", "default_factory", "description", "discriminator", "exclude", *_CONSTRAINTS)


class FieldInfo:
    """What a field declares (see :func:`Field`): default, constraints, description, alias.

    Its attributes are pydantic's names; ``annotation`` is set when the model's fields are
    resolved (the type without its ``Annotated`` metadata).
    """

    __slots__ = (*_OPTIONS, "annotation", "default")

    alias: str | None
    default_factory: Callable[[], Any] | None
    description: str | None
    discriminator: str | None
    exclude: bool | None
    ge: float | None
    gt: float | None
    le: float | None
    lt: float | None
    max_length: int | None
    min_length: int | None
    pattern: str | None

    def __init__(self, default: Any = REQUIRED, **options: Any) -> None:
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown Field options: {', '.join(sorted(unknown))}")
        self.default = REQUIRED if default is ... else default
        for name in _OPTIONS:
            setattr(self, name, options.get(name))
        self.annotation: Any = Any

    def is_required(self) -> bool:
        return self.default is REQUIRED and self.default_factory is None

    def get_default(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default

    def _merge(self, other: FieldInfo) -> None:
        """Take what ``other`` (from ``Annotated``) declares and this one does not."""
        for name in self.__slots__:
            if name in ("annotation", "default", "default_factory"):
                continue
            if getattr(self, name) in (None, False) and getattr(other, name) not in (None, False):
                setattr(self, name, getattr(other, name))

    def _constrains(self) -> bool:
        return any(getattr(self, name) is not None for name in _CONSTRAINTS)

    def __repr__(self) -> str:
        return f"FieldInfo(annotation={self.annotation!r}, default={self.default!r})"


def Field(  # noqa: N802 - named like the pydantic function it stands for
    default: Any = REQUIRED,
    *,
    default_factory: Callable[[], Any] | None = None,
    alias: str | None = None,
    description: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    discriminator: str | None = None,
    exclude: bool = False,
) -> Any:
    """Declare a field (as a default value) or constraints (inside ``Annotated``)."""
    return FieldInfo(**locals())


@dataclass(frozen=True)
class AfterValidator:
    """In ``Annotated``: called with the validated value; returns it (or raises)."""

    func: Callable[[Any], Any]


@dataclass(frozen=True)
class BeforeValidator:
    """In ``Annotated``: called with the raw value before the type is checked."""

    func: Callable[[Any], Any]


@dataclass
class ValidationInfo:
    """What a field validator with a second parameter gets: the fields validated so far."""

    data: dict[str, Any]
    field_name: str


def field_validator(*fields: str) -> Callable[[F], F]:
    """Mark a classmethod ``(cls, value[, info]) -> value`` as a validator of ``fields``,
    run after their type and constraints are checked (defaults too)."""

    def mark(func: F) -> F:
        target: Any = getattr(func, "__func__", func)
        target.__config_validator__ = ("field", fields)
        return func

    return mark


def model_validator(*, mode: Literal["after"]) -> Callable[[F], F]:
    """Mark a method ``(self) -> self`` run once every field is valid."""

    def mark(func: F) -> F:
        func.__config_validator__ = ("model", mode)  # type: ignore[attr-defined]
        return func

    return mark


# -- compiling annotations into checks ----------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _expected(values: Any) -> str:
    items = [repr(v.value if isinstance(v, enum.Enum) else v) for v in values]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


_INT_RE = re.compile(r"^\s*[+-]?\d+(_\d+)*\s*$")


def _check_int(v: Any, loc: Loc) -> Any:
    if type(v) is int:
        return v
    if isinstance(v, bool):
        return _fail("int_type", "Input should be a valid integer", loc, v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer():
            return int(v)
        if not math.isfinite(v):
            return _fail("finite_number", "Input should be a finite number", loc, v)
        return _fail(
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
            loc,
            v,
        )
    if isinstance(v, str):
        if _INT_RE.match(v) and len(v) <= 4300:
            return int(v)
        return _fail(
            "int_parsing", "Input should be a valid integer, unable to parse string", loc, v
        )
    return _fail("int_type", "Input should be a valid integer", loc, v)


def _check_float(v: Any, loc: Loc) -> Any:
    if type(v) is float:
        return v
    if isinstance(v, bool):
        return _fail("float_type", "Input should be a valid number", loc, v)
    if isinstance(v, int | float):
        try:
            return float(v)
        except OverflowError:
            return _fail("float_parsing", "Input should be a valid number", loc, v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return _fail(
                "float_parsing", "Input should be a valid number, unable to parse string", loc, v
            )
    return _fail("float_type", "Input should be a valid number", loc, v)


def _check_str(v: Any, loc: Loc) -> Any:
    if isinstance(v, str):
        return str(v)
    return _fail("string_type", "Input should be a valid string", loc, v)


def _check_bool(v: Any, loc: Loc) -> Any:
    if isinstance(v, bool):
        return v
    return _fail("bool_type", "Input should be a valid boolean", loc, v)


def _check_path(v: Any, loc: Loc) -> Any:
    if isinstance(v, Path):
        return v
    if isinstance(v, str):
        return Path(v)
    return _fail("path_type", "Input is not a valid path", loc, v)


def _check_any(v: Any, loc: Loc) -> Any:
    return v


_SIMPLE: dict[Any, Check] = {
    int: _check_int,
    float: _check_float,
    str: _check_str,
    bool: _check_bool,
    Path: _check_path,
    Any: _check_any,
    object: _check_any,
}


def _check_none(v: Any, loc: Loc) -> Any:
    if v is None:
        return None
    return _fail("none_required", "Input should be None", loc, v)


def _enum(tp: type[enum.Enum]) -> Check:
    members = list(tp)

    def check(v: Any, loc: Loc) -> Any:
        if isinstance(v, tp):
            return v
        try:
            return tp(v)
        except (ValueError, TypeError):
            expected = _expected(members)
            return _fail("enum", f"Input should be {expected}", loc, v, {"expected": expected})

    return check


def _literal(choices: tuple[Any, ...]) -> Check:
    def check(v: Any, loc: Loc) -> Any:
        for c in choices:
            if type(v) is type(c) and v == c:
                return c
        expected = _expected(choices)
        return _fail("literal_error", f"Input should be {expected}", loc, v, {"expected": expected})

    return check


def _each(pairs: Iterable[tuple[Check, Any]], loc: Loc) -> list[Any]:
    """Each value through its check (its index added to ``loc``), reporting every error."""
    values: list[Any] = []
    errors: list[dict[str, Any]] = []
    for i, (check, x) in enumerate(pairs):
        try:
            values.append(check(x, (*loc, i)))
        except _InvalidError as exc:
            errors += exc.errors
    if errors:
        raise _InvalidError(errors)
    return values


def _sequence(item: Check, out: type[list[Any]] | type[tuple[Any, ...]]) -> Check:
    kind = "list" if out is list else "tuple"

    def check(v: Any, loc: Loc) -> Any:
        if not isinstance(v, list | tuple):
            return _fail(f"{kind}_type", f"Input should be a valid {kind}", loc, v)
        values = _each(((item, x) for x in v), loc)
        return values if out is list else tuple(values)

    return check


def _fixed_tuple(items: list[Check]) -> Check:
    def check(v: Any, loc: Loc) -> Any:
        if not isinstance(v, list | tuple):
            return _fail("tuple_type", "Input should be a valid tuple", loc, v)
        if len(v) != len(items):
            return _fail(
                "too_long" if len(v) > len(items) else "too_short",
                f"Tuple should have {len(items)} items, not {len(v)}",
                loc,
                v,
            )
        return tuple(_each(zip(items, v, strict=True), loc))

    return check


def _mapping(key: Check, value: Check) -> Check:
    def check(v: Any, loc: Loc) -> Any:
        if not isinstance(v, Mapping):
            return _fail("dict_type", "Input should be a valid dictionary", loc, v)
        out: dict[Any, Any] = {}
        errors: list[dict[str, Any]] = []
        for k, x in v.items():
            try:
                k2 = key(k, (*loc, k, "[key]"))
                out[k2] = value(x, (*loc, k))
            except _InvalidError as exc:
                errors += exc.errors
        if errors:
            raise _InvalidError(errors)
        return out

    return check


def _union(members: list[Any], owner: Any) -> Check:
    nullable = type(None) in members
    rest = [m for m in members if m is not type(None)]
    checks = [_compile(m, owner) for m in rest]
    exact = [m for m in rest if m in (int, float, str, bool)]

    def check(v: Any, loc: Loc) -> Any:
        if v is None and nullable:
            return None
        if type(v) in exact:  # an exact type match wins, as pydantic's smart mode does
            return v
        # every member refused it: report the member that got furthest into the value
        # (a dict member's bad key, not "Input should be a valid integer" for the dict)
        best: list[dict[str, Any]] = []
        depth = -1
        for c in checks:
            try:
                return c(v, loc)
            except _InvalidError as exc:
                reached = max(len(e["loc"]) for e in exc.errors)
                if reached > depth:
                    best, depth = exc.errors, reached
        raise _InvalidError(best)

    return check


def _tagged(members: list[Any], key: str, owner: Any) -> Check:
    nullable = type(None) in members
    by_tag: dict[Any, Check] = {}
    for m in members:
        if m is type(None):
            continue
        info = m.model_fields[key]
        for tag in get_args(info.annotation):  # Literal[...] tags
            by_tag[tag] = _compile(m, owner)
    tags = ", ".join(repr(t) for t in by_tag)

    def check(v: Any, loc: Loc) -> Any:
        if v is None and nullable:
            return None
        if isinstance(v, ConfigModel):
            tag = getattr(v, key, REQUIRED)
        elif isinstance(v, Mapping):
            tag = v.get(key, REQUIRED)
        else:
            return _fail(
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                loc,
                v,
            )
        if tag is REQUIRED:
            return _fail(
                "union_tag_not_found",
                f"Unable to extract tag using discriminator '{key}'",
                loc,
                v,
                {"discriminator": f"'{key}'"},
            )
        try:
            c = by_tag[tag]
        except (KeyError, TypeError):
            return _fail(
                "union_tag_invalid",
                f"Input tag {tag!r} found using '{key}' does not match any of the expected "
                f"tags: {tags}",
                loc,
                v,
                {"discriminator": f"'{key}'", "tag": str(tag), "expected_tags": tags},
            )
        return c(v, loc)

    return check


_BOUNDS = (  # constraint, error type, wording, test
    ("ge", "greater_than_equal", "greater than or equal to", operator.ge),
    ("gt", "greater_than", "greater than", operator.gt),
    ("le", "less_than_equal", "less than or equal to", operator.le),
    ("lt", "less_than", "less than", operator.lt),
)


def _length(v: Sized, lo: int | None, hi: int | None, loc: Loc) -> None:
    if isinstance(v, str):
        what, unit, kind, tail = "String", "character", "string_too", ""
    else:
        what = "List" if isinstance(v, list) else "Tuple" if isinstance(v, tuple) else "Dict"
        unit, kind, tail = "item", "too", f" after validation, not {len(v)}"
    for limit, short, side in ((lo, True, "at least"), (hi, False, "at most")):
        if limit is not None and (len(v) < limit if short else len(v) > limit):
            units = unit if limit == 1 else unit + "s"
            _fail(
                f"{kind}_{'short' if short else 'long'}",
                f"{what} should have {side} {limit} {units}{tail}",
                loc,
                v,
                {"min_length" if short else "max_length": limit},
            )


def _constrained(inner: Check, info: FieldInfo) -> Check:
    bounds = [(*b, getattr(info, b[0])) for b in _BOUNDS if getattr(info, b[0]) is not None]
    pattern = re.compile(info.pattern) if info.pattern is not None else None
    lo, hi = info.min_length, info.max_length
    sized = lo is not None or hi is not None

    def check(v: Any, loc: Loc) -> Any:
        v = inner(v, loc)
        if isinstance(v, int | float):
            for name, kind, words, test, limit in bounds:
                if not test(v, limit):
                    _fail(kind, f"Input should be {words} {limit}", loc, v, {name: limit})
        elif isinstance(v, str | list | tuple | dict):
            if sized:
                _length(v, lo, hi, loc)
            if pattern is not None and isinstance(v, str) and not pattern.search(v):
                _fail(
                    "string_pattern_mismatch",
                    f"String should match pattern '{pattern.pattern}'",
                    loc,
                    v,
                    {"pattern": pattern.pattern},
                )
        return v

    return check


def _call(func: Callable[..., Any], args: tuple[Any, ...], loc: Loc, value: Any) -> Any:
    """Run a user validator; its ValueError or AssertionError is this value's error."""
    try:
        return func(*args)
    except _InvalidError:
        raise
    except ValueError as exc:
        return _fail("value_error", f"Value error, {exc}", loc, value, {"error": str(exc)})
    except AssertionError as exc:
        return _fail("assertion_error", f"Assertion failed, {exc}", loc, value)


def _with_meta(check: Check, meta: tuple[Any, ...]) -> Check:
    """``check`` with the Before/AfterValidators of ``Annotated`` metadata around it."""
    before = [m for m in meta if isinstance(m, BeforeValidator)][::-1]
    after = [m for m in meta if isinstance(m, AfterValidator)]
    if not before and not after:
        return check

    def wrapped(v: Any, loc: Loc) -> Any:
        for b in before:
            v = _call(b.func, (v,), loc, v)
        v = check(v, loc)
        for a in after:
            v = _call(a.func, (v,), loc, v)
        return v

    return wrapped


def _checked(info: FieldInfo, tp: Any, owner: Any) -> Check:
    """The check for ``tp`` under ``info``: a field's declaration, or an empty one for an
    ``Annotated`` inside a type. ``Annotated`` metadata is merged into ``info`` (which
    then holds the bare type as its ``annotation``) and its validators wrap the check."""
    meta: tuple[Any, ...] = ()
    if get_origin(tp) is Annotated:  # Annotated[X, ...] nests flat: X, metadata
        tp, meta = get_args(tp)[0], get_args(tp)[1:]
    for m in meta:
        if isinstance(m, FieldInfo):
            info._merge(m)
    info.annotation = tp
    check = _compile(tp, owner, discriminator=info.discriminator)
    if info._constrains():
        check = _constrained(check, info)
    return _with_meta(check, meta)


def _model(tp: type[ConfigModel]) -> Check:
    def check(v: Any, loc: Loc) -> Any:
        if isinstance(v, tp):
            return v
        if not isinstance(v, Mapping):
            return _fail(
                "model_type",
                f"Input should be a valid dictionary or instance of {tp.__name__}",
                loc,
                v,
                {"class_name": tp.__name__},
            )
        return tp._validate(v, loc)

    return check


def _compile(tp: Any, owner: Any, *, discriminator: str | None = None) -> Check:
    """The check for values of annotation ``tp``."""
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return simple
    if tp is None or tp is type(None):
        return _check_none
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Annotated:
        return _checked(FieldInfo(), tp, owner)
    if origin in (Union, types.UnionType):
        if discriminator is not None:
            return _tagged(list(args), discriminator, owner)
        return _union(list(args), owner)
    if origin is Literal:
        return _literal(args)
    if origin is list:
        return _sequence(_compile(args[0], owner) if args else _check_any, list)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(_compile(args[0], owner), tuple)
        return _fixed_tuple([_compile(a, owner) for a in args])
    if origin in (dict, Mapping):
        k, v = args if args else (Any, Any)
        return _mapping(_compile(k, owner), _compile(v, owner))
    if isinstance(tp, type):
        if issubclass(tp, ConfigModel):
            return _model(tp)
        if issubclass(tp, enum.Enum):
            return _enum(tp)
    raise TypeError(f"{_type_name(owner)}: config fields cannot be of type {tp!r}")


# -- models -------------------------------------------------------------------------------
@dataclass
class _Schema:
    fields: dict[str, FieldInfo]
    checks: dict[str, Check]
    keys: dict[str, str]  # input key -> field name
    field_validators: dict[str, list[tuple[Callable[..., Any], bool]]]
    model_validators: list[Callable[[Any], Any]]


class _ModelMeta(type):
    @property
    def model_fields(cls) -> dict[str, FieldInfo]:
        """Field name -> :class:`FieldInfo`, in declaration order."""
        return cls._schema().fields  # type: ignore[attr-defined, no-any-return]


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(Field,))
class ConfigModel(metaclass=_ModelMeta):
    """Base for config objects: keyword-built, validated, immutable, unknown keys refused.

    Subclasses declare annotated fields; ``Model(**data)`` and :meth:`model_validate`
    validate, raising :class:`ValidationError`. Methods and ``functools.cached_property``
    are free to add: only annotations are fields.
    """

    __config_schema__: ClassVar[_Schema | None] = None
    __config_ns__: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__config_schema__ = None
        frame = sys._getframe(1)  # the scope of the class statement: a function's locals
        while frame.f_back is not None and frame.f_code.co_name == "__init_subclass__":
            frame = frame.f_back
        cls.__config_ns__ = None if frame.f_locals is frame.f_globals else dict(frame.f_locals)

    @classmethod
    def _schema(cls) -> _Schema:
        schema = cls.__dict__.get("__config_schema__")
        if schema is None:
            schema = cls._build()
            cls.__config_schema__ = schema
        return schema

    @classmethod
    def _build(cls) -> _Schema:
        """Resolve the annotations (after the module has loaded: forward references)."""
        localns = dict(cls.__config_ns__ or {})
        localns.setdefault(cls.__name__, cls)
        hints = get_type_hints(cls, localns=localns, include_extras=True)
        fields: dict[str, FieldInfo] = {}
        checks: dict[str, Check] = {}
        for base in reversed(cls.__mro__):
            for name in inspect.get_annotations(base):
                ann = hints.get(name)
                if name.startswith("_") or ann is ClassVar or get_origin(ann) is ClassVar:
                    continue
                declared = base.__dict__.get(name, REQUIRED)
                info = _copy(declared) if isinstance(declared, FieldInfo) else FieldInfo(declared)
                fields.pop(name, None)  # a redeclared field takes its new place
                checks[name] = _checked(info, ann, cls)
                fields[name] = info
        keys = {info.alias or name: name for name, info in fields.items()}
        marked: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
        for base in reversed(cls.__mro__):  # an override replaces its base's validator
            for attr, value in base.__dict__.items():
                func = getattr(value, "__func__", value)
                mark = getattr(func, "__config_validator__", None)
                if mark is not None:
                    marked[attr] = (func, mark)
        fvals: dict[str, list[tuple[Callable[..., Any], bool]]] = {}
        mvals: list[Callable[[Any], Any]] = []
        for func, mark in marked.values():
            if mark[0] == "model":
                mvals.append(func)
                continue
            with_info = func.__code__.co_argcount >= 3
            for name in mark[1]:
                if name not in fields:
                    raise TypeError(f"{cls.__name__}: no field {name!r} to validate")
                fvals.setdefault(name, []).append((func, with_info))
        return _Schema(fields, checks, keys, fvals, mvals)

    # -- validation -------------------------------------------------------------------
    def __init__(self, **data: Any) -> None:
        built = type(self).model_validate(data)
        self.__dict__.update(built.__dict__)

    @classmethod
    def model_validate(cls: type[M], obj: Any) -> M:
        """Validate a mapping (or return an instance as is); raise :class:`ValidationError`."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping):
            raise ValidationError(
                cls.__name__,
                [
                    _error(
                        "model_type",
                        f"Input should be a valid dictionary or instance of {cls.__name__}",
                        (),
                        obj,
                        {"class_name": cls.__name__},
                    )
                ],
            )
        try:
            return cls._validate(obj, ())
        except _InvalidError as exc:
            raise ValidationError(cls.__name__, exc.errors) from None

    @classmethod
    def _validate(cls: type[M], data: Mapping[Any, Any], loc: Loc) -> M:
        schema = cls._schema()
        errors: list[dict[str, Any]] = []
        values: dict[str, Any] = {}
        for name, info in schema.fields.items():
            key = info.alias or name
            where = (*loc, key)
            if key in data:
                raw = data[key]
            elif info.is_required():
                errors.append(_error("missing", "Field required", where, dict(data)))
                continue
            else:
                raw = info.get_default()
            try:
                value = schema.checks[name](raw, where)
                for func, with_info in schema.field_validators.get(name, ()):
                    info_arg = (ValidationInfo(dict(values), name),) if with_info else ()
                    value = _call(func, (cls, value, *info_arg), where, value)
            except _InvalidError as exc:
                errors += exc.errors
                continue
            values[name] = value
        for key in data:  # after the fields, as pydantic orders them
            if key not in schema.keys:
                errors.append(
                    _error(
                        "extra_forbidden",
                        "Extra inputs are not permitted",
                        (*loc, key),
                        data[key],
                    )
                )
        if errors:
            raise _InvalidError(errors)
        obj = _rebuild(cls, values)
        for func in schema.model_validators:
            _call(func, (obj,), loc, dict(data))
        return obj

    # -- the object -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def _items(self) -> Iterator[tuple[str, Any]]:
        for name in type(self)._schema().fields:
            yield name, self.__dict__[name]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return dict(self._items()) == dict(other._items())

    def __hash__(self) -> int:
        return hash((type(self), *(v for _, v in self._items())))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self._items())
        return f"{type(self).__name__}({body})"

    def __copy__(self: M) -> M:
        return self

    def __deepcopy__(self: M, memo: dict[int, Any]) -> M:
        return self  # immutable

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self._items())))

    def model_dump(
        self, *, by_alias: bool = False, exclude: set[str] | None = None
    ) -> dict[str, Any]:
        """The fields as plain data (nested models as dicts), as pydantic's python mode."""
        out: dict[str, Any] = {}
        for name, info in type(self)._schema().fields.items():
            if info.exclude or (exclude is not None and name in exclude):
                continue
            key = (info.alias or name) if by_alias else name
            out[key] = _dump(self.__dict__[name], by_alias)
        return out

    def model_copy(self: M, *, update: Mapping[str, Any] | None = None) -> M:
        """A copy with some fields replaced (not validated, as pydantic's)."""
        return _rebuild(type(self), {**dict(self._items()), **(update or {})})


def _copy(info: FieldInfo) -> FieldInfo:
    new = FieldInfo.__new__(FieldInfo)
    for name in FieldInfo.__slots__:
        setattr(new, name, getattr(info, name))
    return new


def _rebuild(cls: type[M], values: Mapping[str, Any]) -> M:
    """An instance holding ``values`` as they are (validated already, or unpickled)."""
    obj = cls.__new__(cls)
    obj.__dict__.update(values)
    return obj


def _dump(value: Any, by_alias: bool) -> Any:
    if isinstance(value, ConfigModel):
        return value.model_dump(by_alias=by_alias)
    if isinstance(value, list):
        return [_dump(v, by_alias) for v in value]
    if isinstance(value, tuple):
        return tuple(_dump(v, by_alias) for v in value)
    if isinstance(value, dict):
        return {k: _dump(v, by_alias) for k, v in value.items()}
    return value


def validate_as(tp: Any, value: Any, *, title: str | None = None) -> Any:
    """Validate ``value`` as the annotation ``tp`` (a union of models, say)."""
    check = _compile(tp, tp)
    try:
        return check(value, ())
    except _InvalidError as exc:
        raise ValidationError(title or _type_name(tp), exc.errors) from None
