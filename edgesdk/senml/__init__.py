"""SenML (RFC 8428): readings as JSON or CBOR packs, resolved records, the wire convention.

::

    from edgesdk import senml
    from edgesdk.model import Reading

    wire = senml.encode_cbor(senml.pack_readings([Reading("panel1", "zone3/smoke", 0.12, "%/m")]))
    readings = senml.unpack_readings(senml.decode_cbor(wire))

    records = senml.resolve(senml.decode_json('[{"bn": "dev1/", "n": "temp", "v": 21.5}]'))

Codecs are sans-I/O (bytes or text in, lists of dicts out). Decoders and :func:`resolve`
reject malformed or forbidden input with :class:`SenMLError`; encoders and
:func:`pack_readings` are lean (they run for every reading the gateway forwards).
:func:`encode_readings` gives the bytes of ``encode_cbor(pack_readings(items))`` without
building the pack (the gateway's sealing path); both take readings and reading blocks.
See ``docs/senml.md`` for the names, units and time guarantee the project uses.
"""

from __future__ import annotations

from edgesdk.senml._codec import (
    decode_cbor,
    decode_json,
    encode_cbor,
    encode_json,
    to_cbor_labels,
    to_json_labels,
)
from edgesdk.senml._encode import encode_readings
from edgesdk.senml._model import CborPack, Pack, Record, SenMLError
from edgesdk.senml._readings import pack_readings, unpack_readings
from edgesdk.senml._resolve import MAX_NAME_LENGTH, resolve

__all__ = [
    "MAX_NAME_LENGTH",
    "CborPack",
    "Pack",
    "Record",
    "SenMLError",
    "decode_cbor",
    "decode_json",
    "encode_cbor",
    "encode_json",
    "encode_readings",
    "pack_readings",
    "resolve",
    "to_cbor_labels",
    "to_json_labels",
    "unpack_readings",
]
