"""The gateway config: errors name file, line, key and fix; the reference doc is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesdk.config import ValidationError
from edgesdk.errors import ConfigError
from gateway import config
from gateway.configdoc import reference

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
[gateway]
site = "hq"
id = "gw1"
signing_key = "keys/sign.key"
signing_cert = "certs/sign.crt"

[uplink]
url = "mqtts://127.0.0.1:8883"
cert = "tls.crt"
key = "tls.key"

[devices.panel1]
driver = "modbus-panel"
[devices.panel1.options]
url = "tcp://127.0.0.1:5020"
"""


def test_reference_doc_is_current() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert reference() in doc, "run: python -m gateway.configdoc and paste into the doc"


def test_good_config_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    p = tmp_path / "gw.toml"
    p.write_text(GOOD)
    cfg = config.load(p)
    assert cfg.gateway.signing_key == tmp_path / "keys" / "sign.key"
    assert cfg.uplink.tls and cfg.uplink.protocol == "5"
    assert cfg.devices["panel1"].options == {"url": "tcp://127.0.0.1:5020"}
    assert cfg.rules.man_down_prealarm == 20.0 and cfg.rules.scba_low_fraction == 0.33


@pytest.mark.parametrize(
    ("edit", "line", "key", "fix"),
    [
        (('id = "gw1"', 'id = "gw/1"'), 4, "gateway.id", "A-Z a-z 0-9"),
        (('url = "mqtts://127.0.0.1:8883"', 'url = "http://x"'), 9, "uplink.url", "mqtts://"),
        (('key = "tls.key"', ""), None, "uplink", "both 'cert' and 'key'"),
        (
            ("[devices.panel1]", "[devices.panel1]\nexpected_intervl = 5"),
            14,
            "devices.panel1.expected_intervl",
            "expected_interval",
        ),
        (('site = "hq"', 'site = "hq"\nsite2 = 1'), 4, "gateway.site2", "remove this key"),
        (('id = "gw1"', "id = gw1"), 4, None, "TOML syntax"),
    ],
)
def test_errors_name_file_line_key_and_fix(
    tmp_path: Path, edit: tuple[str, str], line: int | None, key: str | None, fix: str | None
) -> None:
    if edit[0] not in GOOD:
        pytest.fail(f"bad test edit {edit}")
    text = GOOD.replace(edit[0], edit[1], 1)
    p = tmp_path / "gw.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(p)
    err = info.value
    assert err.file == str(p)
    if line is not None:
        assert err.line == line, str(err)
    if key is not None:
        assert err.key is not None and err.key.startswith(key), str(err)
    if fix is not None:
        assert fix in str(err)


def test_secret_refs_never_show_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESDK_TEST_SECRET", "hunter2")
    ref = config.SecretRef(env="EDGESDK_TEST_SECRET")
    assert ref.read() == b"hunter2"
    assert "hunter2" not in repr(ref)
    with pytest.raises(ConfigError, match="NOPE_NOT_SET"):
        config.SecretRef(env="NOPE_NOT_SET").read()
    with pytest.raises(ValidationError, match="exactly one of 'file' or 'env'"):
        config.SecretRef(file=tmp_path / "f", env="X")


def test_default_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    p = tmp_path / "gw.toml"
    p.write_text(GOOD)
    assert config.load(p).gateway.data_dir == tmp_path / "data"
