"""X.509 profiles of a site: the CA, and what each kind of leaf may say and do.

Names (ours, documented in ``docs/installer-guide.md``):

* every subject starts with ``O=edgesdk site <site>``; the CA's name constraints permit
  only that directory-name subtree, so a site CA trusted by a monitoring centre cannot
  mint certificates that claim another site's subject;
* identities are SAN URIs ``urn:edge:<site>:<gateway>`` and
  ``urn:edge:<site>:operator:<name>``; the CA carries ``urn:edge:<site>:ca``, which is how
  tools learn the site from a CA certificate.

URI name constraints (``permitted URI urn:edge:<site>:``) would say the same thing more
directly, but RFC 5280 defines URI constraints on the host part of a URL and OpenSSL
rejects every ``urn:`` SAN under such a constraint ("unsupported or invalid name syntax"),
so the constraint is on the directory name instead and the URI is checked by our tools.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.errors import CryptoError, VerificationError
from provisioning.files import read_bytes
from provisioning.keys import PrivateKey, PublicKey

__all__ = [
    "CA_DAYS",
    "LEAF_DAYS",
    "Kind",
    "cert_pem",
    "check_issued_by",
    "common_name",
    "expiry_problem",
    "gateway_urn",
    "issue",
    "load_cert",
    "make_ca",
    "operator_urn",
    "public_key_of",
    "site_name",
    "site_of_ca",
    "uris",
]

CA_DAYS = 3650
"""Site CA lifetime: ten years, about the service life of a panel installation."""
LEAF_DAYS = 730
"""Default leaf lifetime: two years, renewed by ``provision rotate`` or re-issuing."""
_SKEW = dt.timedelta(minutes=5)  # back-date notBefore: gateways' clocks are rarely exact


class Kind(enum.StrEnum):
    """What a leaf certificate is for; decides its key usage and extended key usage."""

    SIGNING = "signing"  # gateway batch signing key: digitalSignature only
    TLS = "tls"  # gateway MQTT client: clientAuth
    BROKER = "broker"  # MQTT broker: serverAuth
    OPERATOR = "operator"  # a person's client certificate: clientAuth


_EKU: dict[Kind, list[x509.ObjectIdentifier]] = {
    Kind.SIGNING: [],
    Kind.TLS: [ExtendedKeyUsageOID.CLIENT_AUTH],
    Kind.BROKER: [ExtendedKeyUsageOID.SERVER_AUTH],
    Kind.OPERATOR: [ExtendedKeyUsageOID.CLIENT_AUTH],
}


def gateway_urn(site: str, gateway_id: str) -> str:
    return f"urn:edge:{site}:{gateway_id}"


def operator_urn(site: str, name: str) -> str:
    return f"urn:edge:{site}:operator:{name}"


def site_name(site: str, *, cn: str | None = None, ou: str | None = None) -> x509.Name:
    """``O=edgesdk site <site>[, OU=<ou>][, CN=<cn>]``."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"edgesdk site {site}")]
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    return hashes.SHA256() if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    key: PrivateKey,
    site: str,
    *,
    days: int = CA_DAYS,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """The self-signed site CA: CA:true pathlen 0, keyCertSign+cRLSign, name constraints."""
    start = (now or dt.datetime.now(dt.UTC)) - _SKEW
    name = site_name(site, cn=f"{site} site CA")
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DirectoryName(site_name(site))], excluded_subtrees=None
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"urn:edge:{site}:ca")]),
            critical=False,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        .sign(key, _hash_for(key))
    )


def issue(
    *,
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    public_key: PublicKey,
    kind: Kind,
    cn: str,
    ou: str | None = None,
    uris: Sequence[str] = (),
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    days: int = LEAF_DAYS,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    """A leaf of ``kind`` signed by the site CA, with our extensions (never the CSR's)."""
    site = site_of_ca(ca_cert)
    start = not_before or (dt.datetime.now(dt.UTC) - _SKEW)
    end = not_after or (start + dt.timedelta(days=days))
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    sans += [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(site_name(site, cn=cn, ou=ou))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if _EKU[kind]:
        builder = builder.add_extension(x509.ExtendedKeyUsage(_EKU[kind]), critical=False)
    return builder.sign(ca_key, _hash_for(ca_key))


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(path: Path, what: str) -> x509.Certificate:
    """Load one PEM certificate; CryptoError when the file is not one."""
    data = read_bytes(path, what)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CryptoError(f"{what} {path} is not a PEM certificate: {exc}") from exc


def public_key_of(cert: x509.Certificate) -> PublicKey:
    """The certificate's key, narrowed to the two types we issue."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = cert.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise CryptoError(f"certificate {cert.subject.rfc4514_string()} has an unsupported key")
    return key


def uris(cert: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    """The SAN URIs of a certificate or CSR."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def site_of_ca(ca_cert: x509.Certificate) -> str:
    """The site a CA certificate belongs to, from its SAN ``urn:edge:<site>:ca``."""
    for uri in uris(ca_cert):
        parts = uri.split(":")
        if len(parts) == 4 and parts[:2] == ["urn", "edge"] and parts[3] == "ca":
            return parts[2]
    raise VerificationError(
        f"{ca_cert.subject.rfc4514_string()} is not an edgesdk site CA "
        "(no SAN urn:edge:<site>:ca); give the ca.pem written by 'provision ca init'"
    )


def check_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate, what: str) -> None:
    """Raise VerificationError unless ``ca_cert`` signed ``cert`` (names and signature)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        detail = str(exc) or "the signature does not verify with the CA's key"
        raise VerificationError(
            f"{what} was not issued by this CA ({ca_cert.subject.rfc4514_string()}): {detail}; "
            "use the site's own ca.pem or re-issue the certificate"
        ) from exc


def expiry_problem(
    cert: x509.Certificate, *, now: dt.datetime | None = None, warn_days: int = 30
) -> tuple[str, str] | None:
    """``("fail"|"warn", why)`` when the certificate is not (or soon not) valid, else None."""
    now = now or dt.datetime.now(dt.UTC)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        return "fail", f"not valid before {start:%Y-%m-%d %H:%M} UTC (check the clock)"
    if now >= end:
        return "fail", f"expired on {end:%Y-%m-%d %H:%M} UTC"
    left = end - now
    if left < dt.timedelta(days=warn_days):
        return "warn", f"expires in {left.days} days ({end:%Y-%m-%d} UTC)"
    return None
