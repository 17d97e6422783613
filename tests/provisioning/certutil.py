"""Certificates a CLI would never issue, made with the library for failure-path tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from provisioning import certs
from provisioning.ca import open_ca
from provisioning.certs import Kind
from provisioning.passphrase import PassphraseSource

__all__ = ["reissue"]


def reissue(
    ca_dir: Path,
    cert_path: Path,
    kind: Kind,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> None:
    """Replace ``cert_path`` with a cert for the same key and names but another validity."""
    ca = open_ca(ca_dir, PassphraseSource(env="EDGE_CA_PASS"))
    old = certs.load_cert(cert_path, "certificate")
    cert = ca.issue(
        certs.public_key_of(old),
        kind,
        cn=certs.common_name(old.subject) or "x",
        uris=certs.uris(old),
        not_before=not_before,
        not_after=not_after,
    )
    cert_path.write_bytes(certs.cert_pem(cert))
