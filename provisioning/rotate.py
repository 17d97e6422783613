"""``provision rotate``: a new signing key, with the old certificate kept for consumers.

Consumers verify batches by key id; batches signed with the old key may still be queued
in the gateway's store or in flight. So the old *certificate* stays: it is moved aside
(``signing-<serial>.crt``) and listed in ``gateway.previous_signing_certs``, and the
gateway announces it with the new one in its next birth message until consumers have
drained. The old *private key* is overwritten and unlinked: nothing may sign with it again.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import tomlkit

from edgesdk.batch import kid_for
from edgesdk.errors import ConfigError
from gateway import config as gwconfig
from provisioning import certs, keys
from provisioning.ca import SiteCA
from provisioning.certs import Kind
from provisioning.configfile import ConfigFile
from provisioning.csr import gateway_cn
from provisioning.errors import FileAccessError
from provisioning.files import PRIVATE, PUBLIC, write_file
from provisioning.identity import Written

__all__ = ["rotate_signing_key"]


def _erase_after_replace(path: Path, new_pem: bytes) -> None:
    """Put ``new_pem`` at ``path`` atomically, then overwrite the replaced key's blocks."""
    try:
        old_fd: int | None = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        old_fd = None
    except OSError as exc:
        raise FileAccessError(f"cannot open the old signing key {path}: {exc.strerror}") from exc
    try:
        write_file(path, new_pem, mode=PRIVATE, overwrite=True)
        if old_fd is not None:  # the old inode is unlinked now; scrub it before release
            size = os.fstat(old_fd).st_size
            os.pwrite(old_fd, os.urandom(size), 0)
            os.fsync(old_fd)
    finally:
        if old_fd is not None:
            os.close(old_fd)


def rotate_signing_key(config_path: Path, ca: SiteCA, *, days: int = certs.LEAF_DAYS) -> Written:
    """Issue a new signing key and certificate for the gateway of ``config_path``."""
    cfg = gwconfig.load(config_path)
    ident = cfg.gateway
    if ident.site != ca.site:
        raise ConfigError(
            f"the gateway is in site {ident.site!r} but the CA is for site {ca.site!r}",
            file=str(config_path),
            key="gateway.site",
            fix="use the CA of the gateway's own site",
        )
    old_cert = certs.load_cert(ident.signing_cert, "signing certificate")
    old_public = certs.public_key_of(old_cert)
    key_type: keys.KeyType = "ed25519" if keys.key_type_of(old_public) == "ed25519" else "p256"
    passphrase = ident.signing_key_passphrase.read() if ident.signing_key_passphrase else None

    new_key = keys.generate(key_type)
    new_cert = ca.issue(
        new_key.public_key(),
        Kind.SIGNING,
        cn=gateway_cn(ident.site, ident.id, Kind.SIGNING),
        uris=[certs.gateway_urn(ident.site, ident.id)],
        days=days,
    )
    aside = ident.signing_cert.with_name(f"signing-{old_cert.serial_number:x}.crt")
    if aside.exists():
        raise FileAccessError(f"{aside} already exists; was this rotation already done?")
    try:
        os.link(ident.signing_cert, aside)
    except OSError as exc:
        raise FileAccessError(
            f"cannot keep the old certificate as {aside}: {exc.strerror}"
        ) from exc

    config_dir = config_path.resolve().parent
    entry = os.path.relpath(aside, config_dir)
    try:
        editor = ConfigFile(config_path)
        table = editor.doc["gateway"]
        assert isinstance(table, tomlkit.items.Table)
        previous = table.get("previous_signing_certs")
        if previous is None:
            table["previous_signing_certs"] = tomlkit.array()
            previous = table["previous_signing_certs"]
        previous.append(entry)
        editor.save()
    except BaseException:
        with contextlib.suppress(OSError):
            aside.unlink()
        raise

    write_file(ident.signing_cert, certs.cert_pem(new_cert), mode=PUBLIC, overwrite=True)
    _erase_after_replace(ident.signing_key, keys.private_pem(new_key, passphrase))
    return Written(
        files={
            "signing_key": ident.signing_key,
            "signing_cert": ident.signing_cert,
            "previous_cert": aside,
            "config": config_path,
        },
        facts={
            "old_serial": f"{old_cert.serial_number:x}",
            "new_serial": f"{new_cert.serial_number:x}",
            "old_kid": kid_for(old_public).hex(),
            "new_kid": kid_for(new_key.public_key()).hex(),
            "previous_signing_certs": ", ".join(str(p) for p in [*previous]),
        },
    )
