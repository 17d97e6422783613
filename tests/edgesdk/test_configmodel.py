"""The config-model layer (edgesdk.configmodel): what it accepts, what it coerces the way
pydantic's lax mode did for TOML input, and where and how it reports what it refuses, since
every config error an installer reads is built from these locations and messages."""

from __future__ import annotations

import copy
import enum
import pickle
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from edgesdk.config import (
    AfterValidator,
    BeforeValidator,
    ConfigModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
    parse,
    validate_as,
)
from edgesdk.configmodel import REQUIRED
from edgesdk.errors import ConfigError


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


Small = Annotated[int, Field(ge=0, le=9, description="use a digit")]


class Inner(ConfigModel):
    n: Small
    tag: str = Field(default="x", pattern=r"^[a-z]+$")


class A(ConfigModel):
    kind: Literal["a"]
    a: int = 0


class B(ConfigModel):
    kind: Literal["b"]
    b: str = Field(default="", alias="bee")


class Outer(ConfigModel):
    name: str = Field(min_length=1, description="use a name")
    port: int = Field(default=502, ge=1, le=65535)
    ratio: float = Field(default=0.5, gt=0, lt=1)
    enabled: bool = True
    path: Path | None = None
    colour: Colour = Colour.RED
    items: list[Inner] = Field(default_factory=list, max_length=3)
    table: dict[str, Inner] = Field(default_factory=dict)
    keyed: dict[int, int] = Field(default_factory=dict, description="use whole numbers as keys")
    pair: tuple[int, str] | None = None
    choice: A | B | None = Field(default=None, discriminator="kind")
    codes: Annotated[list[int], BeforeValidator(lambda v: [v] if isinstance(v, int) else v)] = (
        Field(default_factory=list)
    )
    even: Annotated[int, AfterValidator(lambda v: v if v % 2 == 0 else _odd(v))] = 0
    either: int | str = 0
    loops: int | dict[int, int] | None = None


def _odd(v: int) -> int:
    raise ValueError(f"{v} is odd")


def errors_of(model: Any, data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return info.value.errors()


def first(model: Any, data: dict[str, Any]) -> tuple[tuple[Any, ...], str, str]:
    e = errors_of(model, data)[0]
    return e["loc"], e["type"], e["msg"]


def test_a_valid_mapping_is_coerced_like_pydantics_lax_mode() -> None:
    o = Outer.model_validate(
        {
            "name": "p",
            "port": 8.0,  # an integral float is an int
            "ratio": 1 / 4,
            "path": "a/b",
            "colour": "green",
            "items": [{"n": 1}, {"n": "2"}],  # a numeric string is an int
            "table": {"t1": {"n": 3, "tag": "abc"}},
            "keyed": {"1": 4},  # TOML keys are strings
            "pair": [1, "x"],
            "choice": {"kind": "b", "bee": "hi"},
            "codes": 7,
            "even": 4,
            "either": "s",
        }
    )
    assert o.port == 8 and type(o.port) is int
    assert o.path == Path("a/b") and o.colour is Colour.GREEN
    assert [i.n for i in o.items] == [1, 2] and o.items[0].tag == "x"
    assert o.table["t1"] == Inner(n=3, tag="abc")
    assert o.keyed == {1: 4} and o.pair == (1, "x")
    assert isinstance(o.choice, B) and o.choice.b == "hi"
    assert o.codes == [7] and o.even == 4 and o.either == "s"
    assert Outer(name="q").ratio == 0.5


@pytest.mark.parametrize(
    ("data", "loc", "kind"),
    [
        ({}, ("name",), "missing"),
        ({"name": ""}, ("name",), "string_too_short"),
        ({"name": 5}, ("name",), "string_type"),
        ({"name": "p", "port": 0}, ("port",), "greater_than_equal"),
        ({"name": "p", "port": 70000}, ("port",), "less_than_equal"),
        ({"name": "p", "port": 1.5}, ("port",), "int_from_float"),
        ({"name": "p", "port": True}, ("port",), "int_type"),
        ({"name": "p", "port": "80x"}, ("port",), "int_parsing"),
        ({"name": "p", "ratio": 1}, ("ratio",), "less_than"),
        ({"name": "p", "ratio": False}, ("ratio",), "float_type"),
        ({"name": "p", "enabled": 1}, ("enabled",), "bool_type"),
        ({"name": "p", "path": 3}, ("path",), "path_type"),
        ({"name": "p", "colour": "blue"}, ("colour",), "enum"),
        ({"name": "p", "items": {"n": 1}}, ("items",), "list_type"),
        ({"name": "p", "items": [{"n": 1}] * 4}, ("items",), "too_long"),
        ({"name": "p", "items": [{"n": 1}, {"n": 10}]}, ("items", 1, "n"), "less_than_equal"),
        ({"name": "p", "items": [5]}, ("items", 0), "model_type"),
        ({"name": "p", "table": {"t1": {"n": 1, "x": 2}}}, ("table", "t1", "x"), "extra_forbidden"),
        (
            {"name": "p", "table": {"t1": {"n": 1, "tag": "A"}}},
            ("table", "t1", "tag"),
            "string_pattern_mismatch",
        ),
        ({"name": "p", "keyed": {"k": 1}}, ("keyed", "k", "[key]"), "int_parsing"),
        ({"name": "p", "pair": [1]}, ("pair",), "too_short"),
        ({"name": "p", "choice": {"a": 1}}, ("choice",), "union_tag_not_found"),
        ({"name": "p", "choice": {"kind": "c"}}, ("choice",), "union_tag_invalid"),
        ({"name": "p", "choice": {"kind": "a", "a": "x"}}, ("choice", "a"), "int_parsing"),
        ({"name": "p", "choice": {"kind": "b", "b": "x"}}, ("choice", "b"), "extra_forbidden"),
        ({"name": "p", "even": 3}, ("even",), "value_error"),
        ({"name": "p", "either": 1.5}, ("either",), "int_from_float"),
        ({"name": "p", "loops": {"1": 3, "x": 2}}, ("loops", "x", "[key]"), "int_parsing"),
        ({"name": "p", "loops": "all"}, ("loops",), "int_parsing"),
        ({"name": "p", "bogus": 1}, ("bogus",), "extra_forbidden"),
    ],
)
def test_each_refusal_is_located_and_typed(
    data: dict[str, Any], loc: tuple[Any, ...], kind: str
) -> None:
    got_loc, got_kind, msg = first(Outer, data)
    assert (got_loc, got_kind) == (loc, kind), msg
    assert msg  # every error says something


def test_messages_read_as_pydantics_did() -> None:
    msgs = {e["loc"]: e["msg"] for e in errors_of(Outer, {"port": 0, "colour": "x", "y": 1})}
    assert msgs == {
        ("name",): "Field required",
        ("port",): "Input should be greater than or equal to 1",
        ("colour",): "Input should be 'red' or 'green'",
        ("y",): "Extra inputs are not permitted",
    }
    e = errors_of(Outer, {"name": "p", "even": 5})[0]
    assert e["msg"] == "Value error, 5 is odd"


def test_defaults_and_field_validators_with_the_fields_before_them() -> None:
    seen: list[dict[str, Any]] = []

    class Range(ConfigModel):
        low: float = 1.0
        high: float = 2.0

        @field_validator("high")
        @classmethod
        def _above(cls, v: float, info: ValidationInfo) -> float:
            seen.append(dict(info.data))
            if v < info.data.get("low", 0.0):
                raise ValueError("high must be >= low")
            return v

        @model_validator(mode="after")
        def _whole(self) -> Range:
            if self.high == 99:
                raise ValueError("not 99")
            return self

    assert Range().high == 2.0 and seen == [{"low": 1.0}]  # the default is validated too
    assert type(Range(low=0).low) is float  # an int is a float
    assert first(Range, {"low": 3}) == (
        ("high",),
        "value_error",
        "Value error, high must be >= low",
    )
    assert first(Range, {"high": 99}) == ((), "value_error", "Value error, not 99")


def test_a_model_is_frozen_comparable_hashable_and_picklable() -> None:
    o = Outer(name="p", items=[Inner(n=1)], choice=A(kind="a"))
    with pytest.raises(TypeError, match="frozen"):
        o.name = "q"  # type: ignore[misc]
    assert o == Outer.model_validate(o.model_dump()) and o != Outer(name="q")
    assert hash(Inner(n=1)) == hash(Inner(n=1))
    assert pickle.loads(pickle.dumps(o)) == o and copy.deepcopy(o) is o
    assert o.model_dump()["items"] == [{"n": 1, "tag": "x"}]
    assert B(kind="b", bee="z").model_dump(by_alias=True) == {"kind": "b", "bee": "z"}
    assert B(kind="b", bee="z").model_dump(exclude={"b"}) == {"kind": "b"}
    assert o.model_copy(update={"port": 9}).port == 9 and o.port == 502
    assert repr(Inner(n=1)) == "Inner(n=1, tag='x')"


def test_fields_describe_themselves() -> None:
    fields = Outer.model_fields
    assert list(fields)[:3] == ["name", "port", "ratio"]
    assert fields["name"].is_required() and fields["name"].description == "use a name"
    assert fields["port"].default == 502 and fields["port"].annotation is int
    assert fields["items"].default_factory is list and not fields["items"].is_required()
    assert Inner.model_fields["n"].description == "use a digit"  # from Annotated
    assert Inner.model_fields["n"].default is REQUIRED


def test_parse_names_the_dotted_key_and_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        parse(Outer, {"name": "p", "table": {"t1": {"n": 12}}}, file="s.toml", prefix="dev")
    err = info.value
    assert err.key == "dev.table.t1.n" and err.fix == "use a digit"
    assert "Input should be less than or equal to 9 (got 12)" in str(err)
    with pytest.raises(ConfigError) as info:
        parse(Outer, {"name": "p", "table": {"t1": {"n": 1, "m": 2}}}, file="s.toml")
    assert info.value.key == "table.t1.m"
    assert "known keys here: n, tag" in str(info.value.fix)
    with pytest.raises(ConfigError) as info:  # a bad table key: the table's own fix
        parse(Outer, {"name": "p", "keyed": {"one": 1}}, file="s.toml")
    assert info.value.key == "keyed.one[key]" and info.value.fix == "use whole numbers as keys"


def test_validate_as_checks_a_bare_annotation() -> None:
    either = Annotated[A | B, Field(discriminator="kind")]
    assert validate_as(either, {"kind": "a", "a": 2}) == A(kind="a", a=2)
    with pytest.raises(ValidationError) as info:
        validate_as(either, {"kind": "z"}, title="control line")
    assert "control line" in str(info.value) and info.value.errors()[0]["loc"] == ()
    with pytest.raises(ValidationError):
        validate_as(list[Small], [1, 99])


def test_an_unsupported_annotation_is_a_bug_named_at_first_use() -> None:
    class Odd(ConfigModel):
        when: complex = 0j

    with pytest.raises(TypeError, match="Odd: config fields cannot be of type"):
        Odd()
