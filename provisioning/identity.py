"""Gateway, broker and operator identities: keys, certificates, CSRs, gateway.toml.

A gateway directory (0700) holds::

    gateway.toml     the config, paths relative to it
    ca.pem           the site CA certificate
    signing.key/.crt Ed25519 batch-signing key (keyUsage digitalSignature only)
    tls.key/.crt     P-256 MQTT client key (extendedKeyUsage clientAuth)

Private keys are written 0600 and unencrypted: the gateway starts unattended, so the
protection is the file mode on the gateway's disk (``signing_key_passphrase`` in the
config exists for sites that can supply a passphrase at start).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from edgesdk.errors import ConfigError
from provisioning import certs, keys
from provisioning.ca import CA_CERT, SiteCA, load_ca_cert
from provisioning.certs import Kind
from provisioning.configfile import render_gateway_toml
from provisioning.csr import check_csr, gateway_cn, make_csr
from provisioning.errors import CryptoError, FileAccessError, VerificationError
from provisioning.files import PRIVATE, PUBLIC, ensure_dir, read_bytes, write_file

__all__ = [
    "CONFIG",
    "SIGNING_CERT",
    "SIGNING_KEY",
    "TLS_CERT",
    "TLS_KEY",
    "Written",
    "check_name",
    "create_gateway",
    "install_cert",
    "make_broker_cert",
    "make_gateway_csrs",
    "make_operator",
    "sign_csr",
]

CONFIG = "gateway.toml"
SIGNING_KEY, SIGNING_CERT, SIGNING_CSR = "signing.key", "signing.crt", "signing.csr"
TLS_KEY, TLS_CERT, TLS_CSR = "tls.key", "tls.crt", "tls.csr"
_GATEWAY_KEYS: tuple[tuple[Kind, keys.KeyType, str, str], ...] = (
    (Kind.SIGNING, "ed25519", SIGNING_KEY, SIGNING_CERT),  # batch signatures: small, fast
    (Kind.TLS, "p256", TLS_KEY, TLS_CERT),  # what every broker's TLS stack accepts
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-._]{0,63}$")


@dataclass
class Written:
    """What a command wrote: paths (never contents) and facts worth printing."""

    files: dict[str, Path] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"files": {k: str(v) for k, v in self.files.items()}, **self.facts}


def check_name(value: str, what: str, option: str) -> str:
    """Site, gateway, device and operator names: A-Z a-z 0-9 - . _ (they go in URNs/topics)."""
    if not _NAME.match(value):
        raise ConfigError(
            f"{what} {value!r} may only use A-Z a-z 0-9 - . _ (at most 64, not starting with -._)",
            key=option,
            fix=f"choose another {option}",
        )
    return value


def _site_of(ca: SiteCA, site: str | None) -> str:
    if site is not None and site != ca.site:
        raise ConfigError(
            f"--site {site!r} does not match the CA, which is for site {ca.site!r}",
            key="--site",
            fix=f"use --site {ca.site} or the CA of site {site!r}",
        )
    return ca.site


def _refuse_existing(out: Path, names: list[str]) -> None:
    existing = [n for n in names if (out / n).exists()]
    if existing:
        raise FileAccessError(
            f"{out} already holds {', '.join(existing)}; refusing to overwrite keys or "
            "certificates (choose another --out, or 'provision rotate' to replace a key)"
        )


def _config_text(site: str, gateway_id: str, broker_url: str) -> bytes:
    """The new gateway.toml, validated before anything is written (a bad --broker fails)."""
    from gateway import config as gwconfig

    text = render_gateway_toml(site=site, gateway_id=gateway_id, broker_url=broker_url)
    try:
        gwconfig.loads(text, file="gateway.toml")
    except ConfigError as exc:
        raise ConfigError(
            exc.reason, key="--broker" if "url" in (exc.key or "") else exc.key, fix=exc.fix
        ) from exc
    return text.encode()


def _write_ca(out: Path, ca_cert: x509.Certificate, written: Written) -> None:
    path = out / CA_CERT
    pem = certs.cert_pem(ca_cert)
    if path.exists() and path.read_bytes() != pem:
        raise VerificationError(
            f"{path} holds a different CA certificate; refusing to replace the trust anchor "
            "(move it away if the site CA really changed)"
        )
    if not path.exists():
        write_file(path, pem, mode=PUBLIC)
    written.files["ca_cert"] = path


def create_gateway(
    ca: SiteCA,
    out: Path,
    gateway_id: str,
    *,
    site: str | None = None,
    broker_url: str,
    days: int = certs.LEAF_DAYS,
) -> Written:
    """Both gateway keys and certificates, the CA certificate and a gateway.toml."""
    site = _site_of(ca, site)
    config_text = _config_text(site, gateway_id, broker_url)
    _refuse_existing(out, [SIGNING_KEY, SIGNING_CERT, TLS_KEY, TLS_CERT, CONFIG])
    ensure_dir(out, 0o700)
    written = Written(facts={"site": site, "gateway": gateway_id})
    for kind, key_type, key_name, cert_name in _GATEWAY_KEYS:
        key = keys.generate(key_type)
        cert = ca.issue(
            key.public_key(),
            kind,
            cn=gateway_cn(site, gateway_id, kind),
            uris=[certs.gateway_urn(site, gateway_id)],
            days=days,
        )
        written.files[f"{kind}_key"] = write_file(
            out / key_name, keys.private_pem(key), mode=PRIVATE
        )
        written.files[f"{kind}_cert"] = write_file(
            out / cert_name, certs.cert_pem(cert), mode=PUBLIC
        )
        written.facts[f"{kind}_serial"] = f"{cert.serial_number:x}"
        written.facts[f"{kind}_key_sha256"] = keys.fingerprint(key)
    _write_ca(out, ca.cert, written)
    written.files["config"] = write_file(out / CONFIG, config_text, mode=PUBLIC)
    written.facts["uri"] = certs.gateway_urn(site, gateway_id)
    return written


def make_gateway_csrs(out: Path, site: str, gateway_id: str, *, broker_url: str) -> Written:
    """On the gateway: both keys (never leaving it), two CSRs and a gateway.toml."""
    config_text = _config_text(site, gateway_id, broker_url)
    _refuse_existing(out, [SIGNING_KEY, TLS_KEY, SIGNING_CSR, TLS_CSR, CONFIG])
    ensure_dir(out, 0o700)
    from cryptography.hazmat.primitives import serialization

    written = Written(facts={"site": site, "gateway": gateway_id})
    for kind, key_type, key_name, _ in _GATEWAY_KEYS:
        csr_name = SIGNING_CSR if kind is Kind.SIGNING else TLS_CSR
        key = keys.generate(key_type)
        csr = make_csr(key, kind, site, gateway_id)
        written.files[f"{kind}_key"] = write_file(
            out / key_name, keys.private_pem(key), mode=PRIVATE
        )
        pem = csr.public_bytes(serialization.Encoding.PEM)
        written.files[f"{kind}_csr"] = write_file(out / csr_name, pem, mode=PUBLIC)
        written.facts[f"{kind}_key_sha256"] = keys.fingerprint(key)
    written.files["config"] = write_file(out / CONFIG, config_text, mode=PUBLIC)
    return written


def sign_csr(
    ca: SiteCA, csr_path: Path, out: Path, *, kind: Kind | None, days: int = certs.LEAF_DAYS
) -> Written:
    """On the laptop: check a gateway CSR strictly and issue its certificate."""
    data = read_bytes(csr_path, "CSR")
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise CryptoError(f"{csr_path} is not a PEM certificate request: {exc}") from exc
    request = check_csr(csr, ca.site, kind)
    public = csr.public_key()
    if not isinstance(public, keys.PublicKey):
        raise VerificationError("unsupported key type in CSR")
    cert = ca.issue(
        public,
        request.kind,
        cn=gateway_cn(ca.site, request.gateway_id, request.kind),
        uris=[certs.gateway_urn(ca.site, request.gateway_id)],
        days=days,
    )
    written = Written(
        facts={
            "kind": str(request.kind),
            "site": ca.site,
            "gateway": request.gateway_id,
            "serial": f"{cert.serial_number:x}",
            "not_after": cert.not_valid_after_utc.isoformat(),
        }
    )
    written.files["cert"] = write_file(out, certs.cert_pem(cert), mode=PUBLIC)
    return written


def install_cert(directory: Path, cert_path: Path, ca_path: Path | None) -> Written:
    """Back on the gateway: the cert must match a local key and chain to the site CA."""
    cert = certs.load_cert(cert_path, "certificate")
    ca_source = ca_path or directory / CA_CERT
    ca_cert = load_ca_cert(ca_source)
    certs.check_issued_by(cert, ca_cert, f"certificate {cert_path}")
    problem = certs.expiry_problem(cert)
    if problem is not None and problem[0] == "fail":
        raise VerificationError(f"certificate {cert_path} is {problem[1]}; issue a new one")
    public = certs.public_key_of(cert)
    matches = []
    for kind, key_name, cert_name in (
        (Kind.SIGNING, SIGNING_KEY, SIGNING_CERT),
        (Kind.TLS, TLS_KEY, TLS_CERT),
    ):
        key_path = directory / key_name
        if key_path.exists() and keys.same_key(
            keys.load_private_key(key_path, None, f"{kind} key"), public
        ):
            matches.append((kind, cert_name))
    if not matches:
        raise VerificationError(
            f"{cert_path} does not match {SIGNING_KEY} or {TLS_KEY} in {directory}: it was "
            "issued for another key; sign this gateway's own CSR"
        )
    kind, cert_name = matches[0]
    site = certs.site_of_ca(ca_cert)
    names = [u for u in certs.uris(cert) if u.startswith(f"urn:edge:{site}:")]
    if not names:
        raise VerificationError(f"{cert_path} names no urn:edge:{site}:<gateway> URI")
    written = Written(facts={"kind": str(kind), "uri": names[0], "site": site})
    if ca_path is not None:
        _write_ca(directory, ca_cert, written)
    written.files["cert"] = write_file(
        directory / cert_name, certs.cert_pem(cert), mode=PUBLIC, overwrite=True
    )
    return written


def make_broker_cert(
    ca: SiteCA, host: str, ips: list[str], out: Path, *, days: int = certs.LEAF_DAYS
) -> Written:
    """A broker server certificate (serverAuth) for ``host`` and ``ips``."""
    dns: list[str] = []
    all_ips = list(ips)
    try:
        ipaddress.ip_address(host)
        all_ips.insert(0, host)
    except ValueError:
        dns.append(host)
    for ip in all_ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError as exc:
            raise ConfigError(
                f"{ip!r} is not an IP address", key="--ip", fix="e.g. --ip 127.0.0.1"
            ) from exc
    _refuse_existing(out, ["broker.key", "broker.crt"])
    ensure_dir(out, 0o700)
    key = keys.generate("p256")
    cert = ca.issue(key.public_key(), Kind.BROKER, cn=host, dns=dns, ips=all_ips, days=days)
    written = Written(facts={"host": host, "serial": f"{cert.serial_number:x}"})
    written.files["key"] = write_file(out / "broker.key", keys.private_pem(key), mode=PRIVATE)
    written.files["cert"] = write_file(out / "broker.crt", certs.cert_pem(cert), mode=PUBLIC)
    _write_ca(out, ca.cert, written)
    return written


def make_operator(
    ca: SiteCA,
    name: str,
    role: str,
    out: Path,
    *,
    key_type: keys.KeyType = "p256",
    days: int = 365,
) -> Written:
    """A person's client certificate: role in OU, SAN urn:edge:<site>:operator:<name>."""
    stem = f"operator-{name}"
    _refuse_existing(out, [f"{stem}.key", f"{stem}.crt"])
    ensure_dir(out, 0o700)
    key = keys.generate(key_type)
    uri = certs.operator_urn(ca.site, name)
    cert = ca.issue(key.public_key(), Kind.OPERATOR, cn=name, ou=role, uris=[uri], days=days)
    written = Written(
        facts={"name": name, "role": role, "uri": uri, "serial": f"{cert.serial_number:x}"}
    )
    written.files["key"] = write_file(out / f"{stem}.key", keys.private_pem(key), mode=PRIVATE)
    written.files["cert"] = write_file(out / f"{stem}.crt", certs.cert_pem(cert), mode=PUBLIC)
    _write_ca(out, ca.cert, written)
    return written
