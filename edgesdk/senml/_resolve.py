"""Resolving a pack (RFC 8428 section 4.6): apply base fields, check what the RFC forbids.

Base fields (``bn bt bu bv bs bver``) apply to their own record and every later one until a
record sets them again (section 4.1). Records keep their input order: the RFC's
chronological order is for archives, and callers here (signed batches) must see exactly
what was signed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgesdk.senml._model import (
    BASE_LABELS,
    SUPPORTED_VERSION,
    Record,
    SenMLError,
    as_records,
    check_number,
    known_fields,
    valid_name,
)

__all__ = ["MAX_NAME_LENGTH", "RELATIVE_LIMIT", "resolve"]

RELATIVE_LIMIT = 2**28
"""Resolved times below this are relative to "now" (RFC 8428 section 4.5.3)."""

MAX_NAME_LENGTH = 256
"""The longest resolved name (``bn + n``) accepted, in characters.

RFC 8428 sets no limit, but every record repeats the base name: without one, a pack of a
long ``bn`` and 10000 tiny records (120 kB) resolved to 600 MB of names. 256
keeps the names of a pack within a small multiple of its size (and of the per-record
object overhead); real names (``urn:dev:...``, ``<device>/<reading>``) are far shorter.
"""


def _add(base: float | int, value: float | int, index: int, label: str) -> float | int:
    # float + float can overflow to inf and int + int can leave the double range.
    total = base + value
    if type(total) is float and total - total == 0.0:
        return total
    return check_number(total, f"record {index}: b{label} + {label}")


def resolve(
    pack: Sequence[Mapping[str, Any]] | Sequence[Mapping[int, Any]],
    *,
    now: float | None = None,
) -> list[Record]:
    """The resolved records of ``pack`` (either label style), in input order.

    Time is ``bt + t``. When ``now`` is given, a time below 2**28 is relative to it and
    becomes ``now + time``; without ``now`` relative times are kept as they are. A record
    that carries only base fields (RFC 8428 example 9) sets them and yields no record.

    Raises :class:`SenMLError` for: a pack that is not an array of maps, known fields of the
    wrong type, non-finite numbers, unknown must-understand fields (ending in ``_``), a
    ``bver`` above 10 or one that changes within the pack, more than one of ``v vs vb vd``,
    a record with no value and no sum, and a name that is empty, longer than
    :data:`MAX_NAME_LENGTH` or uses characters outside section 4.5.1.
    """
    if now is not None:
        now = float(check_number(now, "now"))
    records = as_records(pack)
    base_name = ""
    base_time: float | int | None = None
    base_unit: str | None = None
    base_value: float | int | None = None
    base_sum: float | int | None = None
    version = SUPPORTED_VERSION
    out: list[Record] = []
    for i, rec in enumerate(records):
        f = known_fields(rec, i)
        if "bver" in f:
            if i == 0:
                version = f["bver"]
            elif f["bver"] != version:
                raise SenMLError(
                    f"record {i}: bver {f['bver']} differs from the pack's version {version} "
                    "(RFC 8428 section 4.4: one version per pack)"
                )
        if "bn" in f:
            base_name = f["bn"]
        if "bt" in f:
            base_time = f["bt"]
        if "bu" in f:
            base_unit = f["bu"]
        if "bv" in f:
            base_value = f["bv"]
        if "bs" in f:
            base_sum = f["bs"]
        if f and f.keys() <= BASE_LABELS:
            continue  # only base fields: they apply to later records, no record of its own

        if ("v" in f) + ("vs" in f) + ("vb" in f) + ("vd" in f) > 1:
            raise SenMLError(f"record {i}: more than one of v, vs, vb, vd")
        value = f.get("v")
        if value is not None and base_value is not None:
            value = _add(base_value, value, i, "v")
        total = f.get("s")
        if total is None:
            total = base_sum  # section 4.5.4: a missing sum counts as zero when bs is set
        elif base_sum is not None:
            total = _add(base_sum, total, i, "s")
        if total is None and value is None and "vs" not in f and "vb" not in f and "vd" not in f:
            raise SenMLError(f"record {i}: no value (v, vs, vb, vd) and no sum")

        name = base_name + f.get("n", "")
        if not name:
            raise SenMLError(f"record {i}: the name is empty (no bn and no n)")
        if len(name) > MAX_NAME_LENGTH:
            raise SenMLError(
                f"record {i}: name of {len(name)} characters is longer than {MAX_NAME_LENGTH}"
            )
        if not valid_name(name):
            raise SenMLError(
                f"record {i}: name {name!r} must start with A-Z a-z 0-9 and use only "
                "A-Z a-z 0-9 - : . / _ (RFC 8428 section 4.5.1)"
            )

        t = f.get("t")
        if t is None:
            time = 0.0 if base_time is None else float(base_time)
        elif base_time is None:
            time = float(t)
        else:
            time = float(_add(base_time, t, i, "t"))
        if now is not None and time < RELATIVE_LIMIT:
            time = now + time
            if time - time != 0.0:
                raise SenMLError(f"record {i}: now + t is not a finite time")
        update = f.get("ut")

        out.append(
            Record(
                name=name,
                time=time,
                unit=f.get("u", base_unit),
                value=value,
                string_value=f.get("vs"),
                bool_value=f.get("vb"),
                data_value=f.get("vd"),
                sum=total,
                update_time=None if update is None else float(update),
            )
        )
    return out
