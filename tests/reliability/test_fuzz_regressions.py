"""The bugs the fuzz suite found, each pinned by a small input of its own.

Every test here failed before its fix (an exception other than the documented typed error
escaped, or memory grew hundreds of times beyond the input) and names the product module
it guards. Plain examples, so they keep guarding whatever hypothesis' version or
generation order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest

from drivers.camera_mqtt.config import CameraMqttConfig
from drivers.camera_mqtt.parse import Detection, Parser, PayloadError
from drivers.modbus_panel.profile import load_profile
from edgesdk import senml
from edgesdk.consumer import Inspector, Rejected, SiteTrust
from edgesdk.consumer.core import MAX_STATE_PAYLOAD
from edgesdk.errors import ConfigError
from edgesdk.senml import SenMLError
from gateway.config import load, loads
from tests.reliability.fuzzkit import peak_memory
from tests.reliability.signed import CA_CERT, GW1, certificate, der, kid, payload_map, seal_map

# An integer Python refuses to print (over 4300 decimal digits), as a CBOR bignum (tag 2).
_HUGE = (1 << 15000) - 1

_CONFIG = """\
[gateway]
site = "hq"
id = "gw1"
signing_key = "{key}"
signing_cert = "sign.crt"

[uplink]
url = "mqtt://127.0.0.1:1883"
"""


# -- edgesdk/senml/_model.py, _codec.py: error messages quoted huge integers --------------
@pytest.mark.parametrize(
    "record",
    [
        {0: "a/b", 2: _HUGE},  # v beyond a double: "integer ... outside the range"
        {-1: _HUGE, 0: "a/b", 2: 1},  # bver: "version ... newer than supported"
        {-1: -_HUGE, 0: "a/b", 2: 1},  # bver: "must be a positive integer, got ..."
        {(_HUGE,): 1, 0: "a/b", 2: 1},  # an array key (cbor2 makes it a tuple)
    ],
)
def test_senml_cbor_huge_integer_is_a_senml_error(record: dict[object, object]) -> None:
    with pytest.raises(SenMLError):
        senml.decode_cbor(cbor2.dumps([record]))


def test_senml_resolve_huge_integers_are_senml_errors() -> None:
    with pytest.raises(SenMLError):
        senml.resolve([{"n": "a/b", "v": 1}], now=_HUGE)
    with pytest.raises(SenMLError):
        senml.to_json_labels([{_HUGE: 1}])


# -- edgesdk/senml: a few kilobytes that multiply into hundreds of megabytes -----------------
_LIMIT = 16 * 1024 * 1024


def test_senml_error_message_does_not_expand_string_references() -> None:
    # a map key (cbor2 makes an array key a tuple) holding 3000 references to one 60 kB
    # string: 69 kB on the wire; its full repr in the error message was 180 MB
    key = tuple(["x" * 60_000] * 3000)
    data = cbor2.dumps([{key: 1, 0: "a/b", 2: 1}], string_referencing=True)
    assert len(data) < 70_000
    with pytest.raises(SenMLError) as err:
        senml.decode_cbor(data)
    assert len(str(err.value)) < 1000
    assert peak_memory(lambda: senml.decode_cbor(data)) < _LIMIT


def _long_base_name_pack(records: int = 10_000) -> list[dict[int, Any]]:
    # one 60 kB base name, then short records: every resolved name repeated it (600 MB)
    return [{-2: "a" * 60_000 + "/"}] + [{0: "x", 2: 1}] * records


def test_senml_long_names_are_refused_before_they_multiply() -> None:
    data = cbor2.dumps(_long_base_name_pack())
    assert len(data) < 130_000
    with pytest.raises(SenMLError, match="longer than"):
        senml.resolve(senml.decode_cbor(data))
    assert peak_memory(lambda: senml.unpack_readings(senml.decode_cbor(data))) < _LIMIT
    name = "d/" + "n" * (senml.MAX_NAME_LENGTH - 2)  # the longest name still accepted
    (record,) = senml.resolve([{"n": name, "v": 1}])
    assert record.name == name


def test_unsigned_state_message_cannot_make_the_consumer_allocate() -> None:
    # the consumer decodes a state message before verifying it, to find a birth's certificate
    body = payload_map(stream="state", extra={"birth": {"boot": 1}})
    body["senml"] = _long_base_name_pack()
    message = seal_map(body, GW1)  # signed, but nobody trusts GW1 before its birth
    insp = Inspector(SiteTrust([CA_CERT]), unknown_key_grace=0)
    assert peak_memory(lambda: insp.feed("edge/v1/hq/gw1/state", message)) < _LIMIT
    out = insp.feed("edge/v1/hq/gw1/state", message)
    # over the state-stream size cap, it is refused before any decoding ("malformed");
    # a smaller one is decoded under the SenML name-length limit and waits for its key
    expected = "malformed" if len(message) > MAX_STATE_PAYLOAD else "unknown-key"
    assert [o.reason for o in out if isinstance(o, Rejected)] == [expected]


# -- edgesdk/consumer/trust.py: a birth sealed at an absurd time crashed the consumer ------
@pytest.mark.parametrize("t", [1e300, 1e17, 2.0**63])
def test_birth_with_unrepresentable_time_is_rejected(t: float) -> None:
    insp = Inspector(SiteTrust([CA_CERT]))
    birth = payload_map(stream="state", t=t, extra={"birth": {"cert": der(certificate(GW1))}})
    out = insp.feed("edge/v1/hq/gw1/state", seal_map(birth, GW1))
    assert [type(o) for o in out] == [Rejected]
    assert isinstance(out[0], Rejected) and out[0].reason == "untrusted-cert"
    assert not insp.trust.trusts(kid(GW1))


# -- gateway/config.py and drivers/modbus_panel/profile.py: config files ---------------------
@pytest.mark.parametrize(
    "text",
    ["a = " + "[" * 3000 + "]" * 3000, "a = " + "{b=" * 3000 + "1" + "}" * 3000],
)
def test_deeply_nested_toml_is_a_config_error(text: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        loads(text)
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_profile(path)


@pytest.mark.parametrize(
    "key",
    ['signing_key = "k\\u0000"', 'signing_key = "k"\nprevious_signing_certs = ["c\\u0000"]'],
)
def test_nul_in_a_path_is_a_config_error(key: str, tmp_path: Path) -> None:
    text = _CONFIG.format(key="k").replace('signing_key = "k"', key)
    with pytest.raises(ConfigError, match="NUL") as err:
        loads(text, base=tmp_path)
    assert err.value.key is not None and err.value.key.startswith("gateway.")
    assert err.value.line is not None


def test_nul_in_a_secret_file_path_is_a_config_error(tmp_path: Path) -> None:
    text = _CONFIG.format(key="k") + 'key_passphrase = { file = "p\\u0000" }\n'
    with pytest.raises(ConfigError, match="NUL"):
        loads(text, base=tmp_path)


def test_config_files_that_are_not_utf8_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(_CONFIG.format(key="clé").encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load(path)
    with pytest.raises(ConfigError, match="UTF-8"):
        load_profile(path)


# -- drivers/camera_mqtt/parse.py: JSON integers beyond a double raised OverflowError -------
_BIG_JSON = "1" + "0" * 400  # a valid JSON number; float() of it overflows


def _camera_parser() -> Parser:
    groups = CameraMqttConfig.model_validate({"broker": "mqtt://127.0.0.1"}).groups
    return Parser(groups, max_payload_bytes=65536, snapshot_max_bytes=262144)


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("cameras/c1/event", '{"event": "smoke", "score": %s}'),
        (
            "frigate/events",
            '{"type": "new", "after": {"id": "1", "camera": "c1", "label": "fire", "score": %s}}',
        ),
    ],
)
def test_camera_score_beyond_a_double_is_wrong_type(topic: str, payload: str) -> None:
    with pytest.raises(PayloadError) as err:
        _camera_parser().parse(topic, (payload % _BIG_JSON).encode())
    assert err.value.reason == "wrong_type"


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("cameras/c1/event", '{"event": "smoke", "time": %s}'),
        (
            "AC/event/x",
            '{"timestamp": %s, "topic": "tns1:VideoSource/MotionAlarm", '
            '"message": {"data": {"State": "1"}}}',
        ),
    ],
)
def test_camera_huge_integer_time_is_a_finite_number(topic: str, payload: str) -> None:
    parsed = _camera_parser().parse(topic, (payload % _BIG_JSON).encode())
    assert isinstance(parsed, Detection)  # an integer is finite; the field is not used
