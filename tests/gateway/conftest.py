"""Fixtures shared by the gateway tests: a test PKI and a TLS mosquitto requiring client
certificates (with persistence, as a production broker has)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pki import TestPKI
from tests.support import Mosquitto


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return TestPKI(tmp_path / "pki")


@pytest.fixture
def tls_broker(pki: TestPKI) -> Iterator[Mosquitto]:
    with Mosquitto(tls=pki.broker(), persistence=True) as broker:
        yield broker
