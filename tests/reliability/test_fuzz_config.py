"""Fuzzing the gateway's configuration (``gateway/config.py``): ``loads`` and ``load``.

Documented contract: a config is parsed and validated, and anything wrong is one
:class:`~edgesdk.errors.ConfigError` naming the file (and, where it can, the line, key and
fix). Inputs: arbitrary text; structurally valid TOML of random shapes and values; a full,
valid config with keys replaced by values of any shape, deleted or added; byte-level
mutants of it; files that are not UTF-8. A config that loads has absolute paths.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from edgesdk.errors import ConfigError
from gateway.config import GatewayConfig, load, loads
from tests.reliability.fuzzkit import SCALES, FuzzCount, expect, fuzz_settings
from tests.reliability.hostile import toml_documents

VALID = """\
[gateway]
site = "hq"
id = "gw1"
data_dir = "data"
signing_key = "keys/sign.key"
signing_cert = "keys/sign.crt"
signing_key_passphrase = { env = "EDGE_KEY_PASS" }
previous_signing_certs = ["keys/old.crt"]

[uplink]
url = "mqtts://broker.example:8883"
ca = "ca.pem"
cert = "tls.crt"
key = "tls.key"
key_passphrase = { file = "secrets/tls.pass" }
keepalive = 30
reconnect_min = 0.2

[lanes]
telemetry_max_records = 500
telemetry_max_age = 1.0

[retention]
telemetry_max_bytes = 1073741824

[health]
listen = "127.0.0.1:9108"

[rules]
man_down_prealarm = 20.0
man_down_alarm = 30.0

[rules.zones.lobby]
panel = "panel1"
panel_zones = [1, 2]
cameras = ["lobby"]

[devices.panel1]
driver = "modbus-panel"
expected_interval = 5.0
options = { host = "127.0.0.1", port = 5020, profile = "notifier-gw" }

[devices.beacons]
driver = "beacon-serial"
enabled = false
options = { port = "/dev/ttyUSB0" }
"""


def _texts() -> st.SearchStrategy[str]:
    return toml_documents(tomllib.loads(VALID))


def _check(cfg: GatewayConfig) -> None:
    assert isinstance(cfg, GatewayConfig)
    paths = [cfg.gateway.signing_key, cfg.gateway.signing_cert]
    if cfg.gateway.data_dir != Path("data"):  # the default stays relative to the cwd
        paths.append(cfg.gateway.data_dir)
    paths += list(cfg.gateway.previous_signing_certs)
    paths += [p for p in (cfg.gateway.ca_cert, cfg.uplink.ca, cfg.uplink.cert) if p]
    assert all(p.is_absolute() for p in paths), "a relative path was not resolved"


def test_the_template_is_valid(tmp_path: Path) -> None:
    """The fuzz starts from a config that loads (so edits test one change each)."""
    _check(loads(VALID, base=tmp_path))


@SCALES
def test_fuzz_gateway_config_text(
    scale: int, fuzz: Callable[[str], FuzzCount], tmp_path: Path
) -> None:
    count = fuzz("gateway-config-text")
    seen = {"loaded": 0, "errors": 0}

    @fuzz_settings(700, scale)
    @given(_texts())
    def prop(text: str) -> None:
        with count.example():
            cfg = expect(ConfigError, lambda: loads(text, file="fuzz.toml", base=tmp_path))
            seen["errors" if cfg is None else "loaded"] += 1
            if cfg is not None:
                _check(cfg)

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"


@SCALES
def test_fuzz_gateway_config_files(
    scale: int, fuzz: Callable[[str], FuzzCount], tmp_path: Path
) -> None:
    """load(path) of files holding anything, including bytes that are not UTF-8."""
    count = fuzz("gateway-config-files")
    path = tmp_path / "gateway.toml"
    contents = st.one_of(
        _texts().map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=64),
        st.just(VALID.encode("utf-16")),
        st.just(VALID.replace('"hq"', '"h\u00e9"').encode("latin-1")),
    )

    @fuzz_settings(250, scale)
    @given(contents)
    def prop(content: bytes) -> None:
        with count.example():
            path.write_bytes(content)
            cfg = expect(ConfigError, lambda: load(path))
            if cfg is not None:
                _check(cfg)

    prop()
