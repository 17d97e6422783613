"""Signed configuration bundles for gateways without a network path to the installer.

Modelled on the SUIT manifest (RFC 9124), not an implementation of it: one CBOR file holds
a manifest signed by the site CA key (COSE_Sign1, :mod:`edgesdk.cose`) and the files it
describes. The manifest carries a sequence number (rollback protection), the site and
gateway it is for, and the size and SHA-256 digest (``[-16, h'..']``, SUIT_Digest style)
of every file. Private keys travel only on request, each encrypted with AES-256-GCM under a
key derived by scrypt from a bundle passphrase; the ciphertext is what the digest covers,
so a bundle can be verified without the passphrase. Layout (``docs/installer-guide.md``)::

    ["edgesdk-bundle", 1, h'<COSE_Sign1 manifest>', {"gateway.toml": h'..', ...}]

Sequence numbers come from a counter in the CA directory (previous + 1): small, readable,
and strictly increasing per site CA however wrong a laptop's clock is.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from edgesdk import cose
from edgesdk.batch import kid_for
from edgesdk.errors import ConfigError, ProtocolError, SignatureError
from gateway import config as gwconfig
from provisioning import certs
from provisioning.ca import SiteCA
from provisioning.errors import CryptoError, VerificationError
from provisioning.files import read_bytes

__all__ = [
    "CONTENT_TYPE",
    "BundleFile",
    "Manifest",
    "build_bundle",
    "decrypt_file",
    "open_bundle",
]

MAGIC = "edgesdk-bundle"
FORMAT = 1
CONTENT_TYPE = "application/vnd.edgesdk.bundle-manifest+cbor"
EXTERNAL_AAD = b"edgesdk bundle manifest v1"
SHA256 = -16  # COSE algorithm id of SHA-256, as in SUIT_Digest
SCRYPT = {"n": 2**17, "r": 8, "p": 1}  # 128 MiB, ~0.4 s: RFC 7914 / OWASP interactive
_SCRYPT_LIMITS = {"n": (2**14, 2**20), "r": (1, 16), "p": (1, 4)}  # refuse DoS parameters
MAX_FILES = 64
MAX_FILE_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class BundleFile:
    """One file of a manifest; ``nonce`` is set when the file is encrypted."""

    path: str
    size: int
    digest: bytes
    mode: int
    nonce: bytes | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """A verified manifest and the bundle's file contents (ciphertext for keys)."""

    sequence: int
    site: str
    gateway: str
    created: int
    files: tuple[BundleFile, ...]
    kdf: dict[str, Any] | None
    contents: dict[str, bytes]
    signer_kid: bytes

    def aad(self, path: str) -> bytes:
        """Binds an encrypted file to its slot: this site, gateway, sequence and path."""
        return cbor2.dumps([self.site, self.gateway, self.sequence, path])


def _derive(passphrase: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(
        passphrase
    )


def _collect(
    cfg: gwconfig.GatewayConfig, config_path: Path, include_keys: bool
) -> list[tuple[str, Path, bool]]:
    base = config_path.resolve().parent
    wanted: list[tuple[Path, bool]] = [(config_path.resolve(), False)]
    ident, up = cfg.gateway, cfg.uplink
    for p in (ident.ca_cert, ident.signing_cert, up.ca, up.cert, *ident.previous_signing_certs):
        if p is not None:
            wanted.append((p, False))
    if include_keys:
        wanted += [(ident.signing_key, True)]
        if up.key is not None:
            wanted.append((up.key, True))
    out: dict[str, tuple[str, Path, bool]] = {}
    for path, secret in wanted:
        try:
            rel = path.resolve().relative_to(base)
        except ValueError as exc:
            raise ConfigError(
                f"{path} is outside the config's directory {base}",
                file=str(config_path),
                fix="keep every file the config names beside it (relative paths) to bundle it",
            ) from exc
        out.setdefault(rel.as_posix(), (rel.as_posix(), path, secret))
    return list(out.values())


def build_bundle(
    config_path: Path,
    ca: SiteCA,
    *,
    sequence: int,
    passphrase: bytes | None,
) -> tuple[bytes, Manifest]:
    """The bundle bytes for the gateway of ``config_path``; keys only with ``passphrase``."""
    cfg = gwconfig.load(config_path)
    if cfg.gateway.site != ca.site:
        raise ConfigError(
            f"the config is for site {cfg.gateway.site!r}, the CA for {ca.site!r}",
            file=str(config_path),
            key="gateway.site",
            fix="use the CA of the gateway's site",
        )
    salt = os.urandom(16)
    kdf = {"alg": "scrypt", "salt": salt, **SCRYPT} if passphrase else None
    aes = AESGCM(_derive(passphrase, salt, SCRYPT)) if passphrase else None
    entries: list[dict[str, Any]] = []
    contents: dict[str, bytes] = {}
    files: list[BundleFile] = []
    site, gw, created = cfg.gateway.site, cfg.gateway.id, int(time.time())
    for rel, path, secret in _collect(cfg, config_path, passphrase is not None):
        data = read_bytes(path, "file named by the config")
        entry: dict[str, Any] = {"path": rel, "mode": 0o600 if secret else 0o644}
        nonce = None
        if secret:
            assert aes is not None
            nonce = os.urandom(12)
            data = aes.encrypt(nonce, data, cbor2.dumps([site, gw, sequence, rel]))
            entry["enc"] = {"alg": "A256GCM", "nonce": nonce}
        digest = hashlib.sha256(data).digest()
        entry.update({"size": len(data), "digest": [SHA256, digest]})
        entries.append(entry)
        contents[rel] = data
        files.append(BundleFile(rel, len(data), digest, entry["mode"], nonce))
    payload: dict[str, Any] = {
        "manifest-version": FORMAT,
        "manifest-sequence-number": sequence,
        "site": site,
        "gateway": gw,
        "created": created,
        "files": entries,
    }
    if kdf is not None:
        payload["key-encryption"] = kdf
    kid = kid_for(certs.public_key_of(ca.cert))
    signed = cose.sign1(
        cbor2.dumps(payload, canonical=True),
        ca.key,
        kid=kid,
        protected={cose.HDR_CONTENT_TYPE: CONTENT_TYPE},
        external_aad=EXTERNAL_AAD,
    )
    bundle = cbor2.dumps([MAGIC, FORMAT, signed, contents], canonical=True)
    manifest = Manifest(sequence, site, gw, created, tuple(files), kdf, contents, kid)
    return bundle, manifest


# -- reading ------------------------------------------------------------------------------
def _need(cond: bool, what: str) -> None:
    if not cond:
        raise VerificationError(f"malformed bundle manifest: {what}")


def _safe_path(path: Any) -> str:
    if not isinstance(path, str) or not 0 < len(path) <= 255:
        raise VerificationError(f"malformed bundle manifest: bad file path {path!r}")
    p = PurePosixPath(path)
    _need(
        not p.is_absolute()
        and ".." not in p.parts
        and "\\" not in path
        and str(p) == path
        and not path.startswith(".bundle"),
        f"unsafe file path {path!r}",
    )
    return path


def _file(entry: Any) -> BundleFile:
    _need(isinstance(entry, dict), "a file entry is not a map")
    path = _safe_path(entry.get("path"))
    size, digest, mode = entry.get("size"), entry.get("digest"), entry.get("mode")
    _need(isinstance(size, int) and 0 <= size <= MAX_FILE_SIZE, f"{path}: bad size")
    _need(
        isinstance(digest, list)
        and len(digest) == 2
        and digest[0] == SHA256
        and isinstance(digest[1], bytes)
        and len(digest[1]) == 32,
        f"{path}: digest must be [-16, 32 bytes]",
    )
    _need(mode in (0o600, 0o644), f"{path}: mode must be 0600 or 0644")
    nonce = None
    if "enc" in entry:
        enc = entry["enc"]
        _need(isinstance(enc, dict) and enc.get("alg") == "A256GCM", f"{path}: unknown cipher")
        nonce = enc.get("nonce")
        _need(isinstance(nonce, bytes) and len(nonce) == 12, f"{path}: bad nonce")
    return BundleFile(path, size, digest[1], mode, nonce)


def _kdf(value: Any) -> dict[str, Any]:
    _need(isinstance(value, dict) and value.get("alg") == "scrypt", "unknown key derivation")
    salt = value.get("salt")
    _need(isinstance(salt, bytes) and 16 <= len(salt) <= 64, "bad scrypt salt")
    for name, (low, high) in _SCRYPT_LIMITS.items():
        v = value.get(name)
        _need(isinstance(v, int) and low <= v <= high, f"scrypt {name} out of range")
    return dict(value)


def open_bundle(data: bytes, ca_cert: Any, *, site: str | None = None) -> Manifest:
    """Verify a bundle against the site CA certificate and return its manifest.

    Raises SignatureError (not signed by this CA, or altered) or VerificationError (wrong
    site, a file that does not match its digest, a malformed manifest).
    """
    try:
        outer = cose.loads_strict(data)
    except ProtocolError as exc:
        raise VerificationError(f"not a bundle file: {exc}") from exc
    _need(isinstance(outer, list) and len(outer) == 4 and outer[0] == MAGIC, "not a bundle file")
    _need(outer[1] == FORMAT, f"bundle format {outer[1]!r} is not supported (expected {FORMAT})")
    signed, contents = outer[2], outer[3]
    _need(isinstance(signed, bytes) and isinstance(contents, dict), "bad layout")
    ca_key = certs.public_key_of(ca_cert)
    ca_site = certs.site_of_ca(ca_cert)
    expected_kid = kid_for(ca_key)
    parsed = cose.parse1(signed)
    if parsed.kid is not None and parsed.kid != expected_kid:
        raise SignatureError(
            f"bundle was signed by another key (kid {parsed.kid.hex()}), not by this site CA "
            f"(kid {expected_kid.hex()}); use the ca.pem of the site that made the bundle"
        )
    try:
        payload = cose.verify_parsed(parsed, ca_key, external_aad=EXTERNAL_AAD)
    except SignatureError as exc:
        raise SignatureError(
            f"bundle signature is not valid ({exc}): the manifest was altered or not signed "
            "by this site CA; do not install it"
        ) from exc
    _need(parsed.protected.get(cose.HDR_CONTENT_TYPE) == CONTENT_TYPE, "wrong content type")
    try:
        body = cose.loads_strict(payload)
    except ProtocolError as exc:
        raise VerificationError(f"malformed bundle manifest: {exc}") from exc
    _need(isinstance(body, dict), "manifest is not a map")
    _need(body.get("manifest-version") == FORMAT, "unsupported manifest-version")
    seq = body.get("manifest-sequence-number")
    _need(isinstance(seq, int) and 1 <= seq < 2**63, "bad sequence number")
    bsite, gw, created = body.get("site"), body.get("gateway"), body.get("created")
    _need(isinstance(bsite, str) and isinstance(gw, str) and isinstance(created, int), "bad ids")
    raw_files = body.get("files")
    _need(isinstance(raw_files, list) and 0 < len(raw_files) <= MAX_FILES, "bad file list")
    files = tuple(_file(e) for e in raw_files)
    kdf = _kdf(body["key-encryption"]) if "key-encryption" in body else None
    _need(kdf is not None or all(f.nonce is None for f in files), "encrypted file without kdf")
    if bsite != ca_site:
        raise VerificationError(f"bundle is for site {bsite!r}, but this CA is site {ca_site!r}")
    if site is not None and bsite != site:
        raise VerificationError(f"bundle is for site {bsite!r}, not {site!r}; wrong bundle?")
    names = [f.path for f in files]
    _need(len(set(names)) == len(names), "duplicate file paths")
    if set(contents) != set(names):
        extra = sorted(map(str, set(contents) ^ set(names)))
        raise VerificationError(f"bundle files do not match the manifest: {extra}")
    for f in files:
        blob = contents[f.path]
        _need(isinstance(blob, bytes), f"{f.path}: content is not bytes")
        if len(blob) != f.size or hashlib.sha256(blob).digest() != f.digest:
            raise VerificationError(
                f"{f.path} was changed after signing (size or SHA-256 digest mismatch); "
                "do not install this bundle"
            )
    return Manifest(seq, bsite, gw, created, files, kdf, dict(contents), expected_kid)


def decrypt_file(
    manifest: Manifest, f: BundleFile, passphrase: bytes, cache: dict[str, bytes]
) -> bytes:
    """The plaintext of an encrypted file (``cache`` keeps the derived key between files)."""
    if f.nonce is None or manifest.kdf is None:
        raise VerificationError(f"{f.path} is not encrypted")
    if "key" not in cache:
        params = {k: int(manifest.kdf[k]) for k in ("n", "r", "p")}
        cache["key"] = _derive(passphrase, manifest.kdf["salt"], params)
    try:
        return AESGCM(cache["key"]).decrypt(
            f.nonce, manifest.contents[f.path], manifest.aad(f.path)
        )
    except InvalidTag as exc:
        raise CryptoError(
            f"cannot decrypt {f.path}: wrong bundle passphrase (or the bundle was altered)"
        ) from exc
