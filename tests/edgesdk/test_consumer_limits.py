"""The consumer refuses oversize messages before decoding anything (memory safety)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesdk.consumer import Inspector, Rejected, SiteTrust
from edgesdk.consumer.core import MAX_PAYLOAD, MAX_STATE_PAYLOAD
from edgesdk.errors import ConfigError
from tests.pki import TestPKI


def _trust(tmp_path: Path) -> SiteTrust:
    return SiteTrust([TestPKI(tmp_path / "pki").ca_cert])


def test_oversize_messages_are_rejected_unread(tmp_path: Path) -> None:
    insp = Inspector(_trust(tmp_path))
    (out,) = insp.feed("edge/v1/hq/gw1/telemetry", b"\xa0" * (MAX_PAYLOAD + 1))
    assert isinstance(out, Rejected)
    assert out.reason == "malformed"
    assert "limit" in out.detail
    (out,) = insp.feed("edge/v1/hq/gw1/state", b"\xa0" * (MAX_STATE_PAYLOAD + 1))
    assert isinstance(out, Rejected)
    assert out.reason == "malformed"
    # just under the limit: decoded, and rejected for what it is, not for its size
    (out,) = insp.feed("edge/v1/hq/gw1/telemetry", b"\xa0" * 10)
    assert isinstance(out, Rejected)
    assert "limit" not in out.detail
    assert insp.summary().rejected["malformed"] >= 2


def test_limits_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Inspector(_trust(tmp_path), max_payload=10)
