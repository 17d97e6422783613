"""Readings to compact SenML-CBOR packs and back: the project's wire convention.

A reading of device ``panel1`` named ``zone3/smoke`` is the SenML record named
``panel1/zone3/smoke``: ``bn`` is ``"<device>/"`` (repeated only when the device changes),
``n`` the reading name. Device ids cannot contain ``/``, so the first ``/`` splits them.

Times: the first record carries ``bt`` (absolute epoch seconds, float) and each record the
offset ``t = time - bt`` (left out when 0). Before using an offset, :func:`pack_readings`
checks that ``bt + t`` gives back exactly the reading's time; where float rounding would
lose anything (times far apart, e.g. 1.0 and 1.7e9) the record starts a new ``bt`` instead.
CBOR carries floats exactly, so every finite time comes back bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from edgesdk.model import Reading, Value
from edgesdk.senml._model import CborPack, SenMLError
from edgesdk.senml._resolve import resolve

__all__ = ["pack_readings", "unpack_readings"]

_FAST_KEYS = frozenset({-2, -3, 0, 1, 2, 3, 4, 6, 8})
_ABSOLUTE = 2**28  # RFC 8428: smaller resolved times are relative to "now"

# CBOR labels (RFC 8428 section 6), spelled out so the hot loop does no table lookups.
_BN, _BT, _N, _U, _V, _VS, _VB, _T, _VD = -2, -3, 0, 1, 2, 3, 4, 6, 8


def _value_label(value: Value) -> int:
    # Readings may hold subclasses (IntEnum, StrEnum); bool before int: bool is an int.
    if isinstance(value, bool):
        return _VB
    if isinstance(value, int | float):
        return _V
    if isinstance(value, str):
        return _VS
    return _VD


def pack_readings(readings: Sequence[Reading]) -> CborPack:
    """A compact CBOR-labelled pack for ``readings``, in their order (deterministic).

    Consecutive readings of one device share ``bn``. Values map by type: bool to ``vb``,
    int and float to ``v`` (an int stays an int), str to ``vs``, bytes to ``vd``. No
    validation beyond what :class:`~edgesdk.model.Reading` guarantees: a NaN value or time
    is packed and then rejected by the receiver's :func:`resolve`.
    """
    pack: CborPack = []
    device = None
    base_time = 0.0
    for reading in readings:
        rec: dict[int, Any] = {}
        if reading.device != device:
            device = reading.device
            rec[_BN] = device + "/"
        rec[_N] = reading.name
        when = reading.time
        offset = when - base_time
        if not pack or base_time + offset != when:
            base_time = float(when)
            rec[_BT] = base_time
        elif offset:
            rec[_T] = offset
        if reading.unit is not None:
            rec[_U] = reading.unit
        value = reading.value
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

    Handles only CBOR-labelled records using ``bn``, ``bt``, ``n``, ``u``, ``t`` and one of
    ``v``/``vs``/``vb``/``vd``, with float times that resolve to absolute epoch seconds.
    Anything else (or anything doubtful) returns None and the full :func:`resolve` path
    decides, so what is accepted, rejected and returned never differs: the fast path only
    accepts what the full path accepts, and builds the same readings (a property test
    checks this). Verifying consumers spend most of their time here.
    """
    out: list[Reading] = []
    device = ""
    bt = 0.0
    have_bt = False
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
        unit = rec.get(_U)
        if unit is not None and type(unit) is not str:
            return None
        if _V in rec:
            value = rec[_V]
            kind = type(value)
            if (kind is not float and kind is not int) or (kind is float and not isfinite(value)):
                return None
            if _VS in rec or _VB in rec or _VD in rec:
                return None
        elif _VS in rec:
            value = rec[_VS]
            if type(value) is not str or _VB in rec or _VD in rec:
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
