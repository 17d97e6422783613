"""Readings to compact SenML-CBOR packs and back: the project's wire convention.

A reading of device ``panel1`` named ``zone3/smoke`` is the SenML record named
``panel1/zone3/smoke``: ``bn`` is ``"<device>/"`` (repeated only when the device changes),
``n`` the reading name. Device ids cannot contain ``/``, so the first ``/`` splits them.

Units: when every reading of a pack has a unit, the first record carries ``bu``, the most
common unit (ties: the one that occurs first), and only readings with another unit carry
``u``. A pack usually holds many readings of one kind, and a ``u`` on each cost about 5 bytes
per reading. When any reading has no unit there is no ``bu`` (it would give that reading
one), and every reading with a unit carries ``u``.

Times: the first record carries ``bt`` (absolute epoch seconds, float) and each record the
offset ``t = time - bt`` (left out when 0). Before using an offset, :func:`pack_readings`
checks that ``bt + t`` gives back exactly the reading's time; where float rounding would
lose anything (times far apart, e.g. 1.0 and 1.7e9) the record starts a new ``bt`` instead.
CBOR carries floats exactly, so every finite time comes back bit for bit.

:func:`pack_readings` defines the pack; :func:`~edgesdk.senml.encode_readings` writes the
same pack's deterministic CBOR bytes directly (the gateway's sealing path).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias

from edgesdk.model import Reading, ReadingBlock, ReadingLayout, Value
from edgesdk.senml._model import CborPack, SenMLError
from edgesdk.senml._resolve import resolve

__all__ = ["ReadingItems", "pack_readings", "scan_items", "unit_key", "unpack_readings"]

ReadingItems: TypeAlias = Sequence[Reading | ReadingBlock]
"""What :func:`pack_readings` and ``encode_readings`` take: readings and blocks, mixed."""

_FAST_KEYS = frozenset({-4, -3, -2, 0, 1, 2, 3, 4, 6, 8})
_ABSOLUTE = 2**28  # RFC 8428: smaller resolved times are relative to "now"
_FLOAT_MAX = 1.7976931348623157e308  # resolve() refuses integers outside a double's range

# CBOR labels (RFC 8428 section 6), spelled out so the hot loop does no table lookups.
_BU, _BN, _BT, _N, _U, _V, _VS, _VB, _T, _VD = -4, -2, -3, 0, 1, 2, 3, 4, 6, 8

# layout.cache key: the layout's (unit, count) pairs in first-occurrence order, and
# whether every unit is text.
_LAYOUT_UNITS = "edgesdk.senml.units"


def _value_label(value: Value) -> int:
    # Readings may hold subclasses (IntEnum, StrEnum); bool before int: bool is an int.
    if isinstance(value, bool):
        return _VB
    if isinstance(value, int | float):
        return _V
    if isinstance(value, str):
        return _VS
    return _VD


def unit_key(unit: object) -> str | None:
    """``unit`` as a plain ``str`` (a ``StrEnum`` unit counts as its text), or ``None``
    when it is no text at all (no unit, or a bad one: such a pack gets no ``bu``)."""
    if type(unit) is str:
        return unit
    if isinstance(unit, str):
        return str.__str__(unit)  # an exact str of the same text (hash and == agree)
    return None


def _layout_units(layout: ReadingLayout) -> tuple[tuple[tuple[str, int], ...], bool]:
    found = layout.cache.get(_LAYOUT_UNITS)
    if found is None:
        counts: dict[str, int] = {}
        every = True
        for unit in layout.units:
            key = unit_key(unit)
            if key is None:
                every = False
            else:
                counts[key] = counts.get(key, 0) + 1
        found = (tuple(counts.items()), every)
        layout.cache[_LAYOUT_UNITS] = found
    pairs: tuple[tuple[tuple[str, int], ...], bool] = found
    return pairs


def scan_items(items: ReadingItems) -> tuple[int, str | None]:
    """(number of readings, base unit) of ``items``; the base unit is ``None`` unless
    every reading has a unit. Raises ``TypeError`` for an item that is not a
    :class:`Reading` or :class:`ReadingBlock`."""
    # Counted in runs of one unit object (readings of a pack mostly share theirs); a run is
    # added when it ends, which keeps the dict in first-occurrence order for the ties.
    counts: dict[str, int] = {}
    get = counts.get
    total = 0
    every = True
    last: object = counts  # no unit is this object
    last_key: str | None = None
    run = 0
    for item in items:
        if type(item) is Reading or isinstance(item, Reading):
            total += 1
            unit = item.unit
            if unit is last:
                run += 1
                continue
            if last_key is not None:
                counts[last_key] = get(last_key, 0) + run
            last, run = unit, 1
            last_key = unit_key(unit)
            every = every and last_key is not None
        elif isinstance(item, ReadingBlock):
            if last_key is not None:
                counts[last_key] = get(last_key, 0) + run
            last, last_key, run = counts, None, 0
            total += len(item.values)
            pairs, all_text = _layout_units(item.layout)
            every = every and all_text
            for unit, n in pairs:
                counts[unit] = get(unit, 0) + n
        else:
            raise TypeError(f"expected Reading or ReadingBlock items, got {type(item).__name__}")
    if last_key is not None:
        counts[last_key] = get(last_key, 0) + run
    if not every or not counts:
        return total, None
    return total, max(counts, key=counts.__getitem__)  # max keeps the first of equals


def _rows(items: ReadingItems) -> Iterator[tuple[str, str, Value, str | None, float]]:
    """(device, name, value, unit, time) of every reading, blocks flattened in order."""
    for item in items:
        if isinstance(item, Reading):
            yield item.device, item.name, item.value, item.unit, item.time
        else:
            layout, when = item.layout, item.time
            device = layout.device
            for name, unit, value in zip(layout.names, layout.units, item.values, strict=True):
                yield device, name, value, unit, when


def pack_readings(items: ReadingItems) -> CborPack:
    """A compact CBOR-labelled pack for ``items``, in their order (deterministic).

    Blocks count as their readings, in order. Consecutive readings of one device share
    ``bn``; when every reading has a unit, ``bu`` is the most common one and only the
    others carry ``u``. Values map by type: bool to ``vb``, int and float to ``v`` (an int
    stays an int), str to ``vs``, bytes to ``vd``. No validation beyond what
    :class:`~edgesdk.model.Reading` guarantees: a NaN value or time is packed and then
    rejected by the receiver's :func:`resolve`. Raises ``TypeError`` for an item that is
    neither a reading nor a block.
    """
    if type(items) is not list and type(items) is not tuple:
        items = list(items)  # read twice: a generator would be empty the second time
    _, base_unit = scan_items(items)
    pack: CborPack = []
    device = None
    base_time = 0.0
    for dev, name, value, unit, when in _rows(items):
        rec: dict[int, Any] = {}
        if dev != device:
            device = dev
            rec[_BN] = dev + "/"
        rec[_N] = name
        offset = when - base_time
        if not pack or base_time + offset != when:
            if not pack and base_unit is not None:
                rec[_BU] = base_unit
            base_time = float(when)
            rec[_BT] = base_time
        elif offset:
            rec[_T] = offset
        if unit is not None and (base_unit is None or unit_key(unit) != base_unit):
            rec[_U] = unit
        kind = type(value)
        if kind is float or kind is int:
            rec[_V] = value
        elif kind is str:
            rec[_VS] = value
        elif kind is bool:
            rec[_VB] = value
        elif kind is bytes:
            rec[_VD] = value
        else:
            rec[_value_label(value)] = value
        pack.append(rec)
    return pack


def unpack_readings(
    pack: Sequence[Mapping[int, Any]] | Sequence[Mapping[str, Any]],
    *,
    now: float | None = None,
) -> list[Reading]:
    """The readings in ``pack`` (either label style), in pack order.

    Resolves the pack (see :func:`resolve`; ``now`` is passed on, so relative times stay
    relative unless it is given) and splits each name at its first ``/`` into device and
    reading name. Raises :class:`SenMLError` for a name without ``/``, a device or reading
    name :class:`~edgesdk.model.Reading` refuses, or a record with a sum but no value.
    """
    fast = _fast_unpack(pack) if now is None and type(pack) is list and pack else None
    if fast is not None:
        return fast
    return _full_unpack(pack, now=now)


def _full_unpack(
    pack: Sequence[Mapping[int, Any]] | Sequence[Mapping[str, Any]],
    *,
    now: float | None = None,
) -> list[Reading]:
    """:func:`unpack_readings` through the complete resolver (any valid pack)."""
    readings: list[Reading] = []
    for i, rec in enumerate(resolve(pack, now=now)):
        device, slash, name = rec.name.partition("/")
        if not slash:
            raise SenMLError(f"record {i}: name {rec.name!r} has no '/' (<device>/<name>)")
        value: Value
        if rec.value is not None:
            value = rec.value
        elif rec.string_value is not None:
            value = rec.string_value
        elif rec.bool_value is not None:
            value = rec.bool_value
        elif rec.data_value is not None:
            value = rec.data_value
        else:
            raise SenMLError(f"record {i}: {rec.name!r} has a sum but no value")
        try:
            readings.append(Reading(device, name, value, rec.unit, rec.time))
        except (ValueError, TypeError) as exc:
            raise SenMLError(f"record {i}: {exc}") from exc
    return readings


def _fast_unpack(pack: Sequence[Mapping[Any, Any]]) -> list[Reading] | None:
    """The common case, quickly: a pack as :func:`pack_readings` writes it.

    Handles only CBOR-labelled records using ``bn``, ``bt``, ``bu``, ``n``, ``u``, ``t`` and
    one of ``v``/``vs``/``vb``/``vd``, with float times that resolve to absolute epoch seconds.
    A record's unit is its ``u`` if present, else the latest ``bu`` (as in :func:`resolve`).
    Anything else (or anything doubtful) returns None and the full :func:`resolve` path
    decides, so what is accepted, rejected and returned never differs: the fast path only
    accepts what the full path accepts, and builds the same readings (a property test
    checks this). Verifying consumers spend most of their time here.
    """
    out: list[Reading] = []
    device = ""
    bt = 0.0
    have_bt = False
    base_unit = None
    isfinite = math.isfinite
    for rec in pack:
        if type(rec) is not dict or not rec.keys() <= _FAST_KEYS:
            return None
        if _BN in rec:
            bn = rec[_BN]
            if type(bn) is not str or not bn.endswith("/") or bn.count("/") != 1:
                return None
            device = bn[:-1]
        if _BT in rec:
            bt = rec[_BT]
            if type(bt) is not float or not isfinite(bt):
                return None
            have_bt = True
        if _BU in rec:
            base_unit = rec[_BU]
            if type(base_unit) is not str or not _text_ok(base_unit):
                return None
        name = rec.get(_N)
        if type(name) is not str or not device or not have_bt:
            return None
        if _T in rec:
            t = rec[_T]
            if type(t) is not float or not isfinite(t):
                return None
            when = bt + t
        else:
            when = bt
        if not when >= _ABSOLUTE or not isfinite(when):
            return None
        if _U in rec:
            unit = rec[_U]
            if type(unit) is not str or not _text_ok(unit):
                return None
        else:
            unit = base_unit
        if _V in rec:
            value = rec[_V]
            kind = type(value)
            if kind is float:
                if not isfinite(value):
                    return None
            elif kind is not int or not -_FLOAT_MAX <= value <= _FLOAT_MAX:
                return None
            if _VS in rec or _VB in rec or _VD in rec:
                return None
        elif _VS in rec:
            value = rec[_VS]
            if type(value) is not str or not _text_ok(value) or _VB in rec or _VD in rec:
                return None
        elif _VB in rec:
            value = rec[_VB]
            if type(value) is not bool or _VD in rec:
                return None
        elif _VD in rec:
            value = rec[_VD]
            if type(value) is not bytes:
                return None
        else:
            return None
        try:
            out.append(Reading(device, name, value, unit, when))
        except (ValueError, TypeError):
            return None
    return out


def _text_ok(text: str) -> bool:
    """What the full path's text check accepts: valid Unicode (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
