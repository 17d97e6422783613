"""Certificate signing requests for keys that never leave the gateway.

The gateway makes its keys and two CSRs; the laptop with the CA checks each CSR and signs
it. The check is strict because the CSR comes from a box the CA does not control: the
signature must prove possession of the key, the key type must fit the kind, and the CSR
may ask only for the gateway's own name in this site and for the usages its kind allows.
The certificate is then built from our profile, never by copying the CSR's extensions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisioning.certs import Kind, gateway_urn, site_name, uris
from provisioning.errors import VerificationError
from provisioning.keys import PrivateKey, key_type_of

__all__ = ["CsrRequest", "check_csr", "gateway_cn", "make_csr"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-._]*$")
_ALLOWED_KEYS = {Kind.SIGNING: ("ed25519", "p256"), Kind.TLS: ("p256", "ed25519")}
_ALLOWED_EXTS = {
    x509.SubjectAlternativeName,
    x509.KeyUsage,
    x509.ExtendedKeyUsage,
    x509.BasicConstraints,
}


@dataclass(frozen=True, slots=True)
class CsrRequest:
    """What a CSR that passed :func:`check_csr` asks for."""

    kind: Kind
    site: str
    gateway_id: str


def gateway_cn(site: str, gateway_id: str, kind: Kind) -> str:
    """``<site>-<id>`` for TLS (mosquitto's username), ``<site>-<id> signing`` otherwise."""
    return f"{site}-{gateway_id}" if kind is Kind.TLS else f"{site}-{gateway_id} signing"


def make_csr(
    key: PrivateKey, kind: Kind, site: str, gateway_id: str
) -> x509.CertificateSigningRequest:
    """A CSR asking for exactly what :func:`check_csr` accepts for ``kind``."""
    from cryptography.hazmat.primitives import hashes

    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(site_name(site, cn=gateway_cn(site, gateway_id, kind)))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(gateway_urn(site, gateway_id))]
            ),
            critical=False,
        )
    )
    if kind is Kind.TLS:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    algorithm = hashes.SHA256() if isinstance(key, ec.EllipticCurvePrivateKey) else None
    return builder.sign(key, algorithm)


def _requested_kind(csr: x509.CertificateSigningRequest) -> Kind:
    try:
        eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return Kind.SIGNING
    return Kind.TLS if ExtendedKeyUsageOID.CLIENT_AUTH in eku else Kind.SIGNING


def check_csr(
    csr: x509.CertificateSigningRequest, site: str, kind: Kind | None = None
) -> CsrRequest:
    """Accept a gateway CSR for ``site`` or raise VerificationError listing every problem."""
    if not csr.is_signature_valid:
        raise VerificationError(
            "the CSR's signature does not verify: it was altered or not made with its key; "
            "make a new one with 'provision gateway csr'"
        )
    kind = kind or _requested_kind(csr)
    if kind not in _ALLOWED_KEYS:
        raise VerificationError(f"a gateway CSR is for kind signing or tls, not {kind}")
    problems: list[str] = []
    key_type = key_type_of(csr.public_key())
    if key_type not in _ALLOWED_KEYS[kind]:
        problems.append(f"a {kind} key must be {' or '.join(_ALLOWED_KEYS[kind])}, not {key_type}")
    names = uris(csr)
    gateway_id = ""
    prefix = f"urn:edge:{site}:"
    if len(names) != 1 or not names[0].startswith(prefix):
        problems.append(f"the CSR must name exactly one SAN URI {prefix}<gateway>, got {names}")
    else:
        gateway_id = names[0][len(prefix) :]
        if not _ID.match(gateway_id):
            problems.append(f"gateway id {gateway_id!r} is not valid (A-Z a-z 0-9 - . _)")
    expected = site_name(site, cn=gateway_cn(site, gateway_id, kind))
    if csr.subject != expected:
        problems.append(
            f"subject must be {expected.rfc4514_string()!r}, got {csr.subject.rfc4514_string()!r}"
        )
    problems += _extension_problems(csr, kind)
    if problems:
        raise VerificationError(f"refusing to sign this {kind} CSR: " + "; ".join(problems))
    return CsrRequest(kind=kind, site=site, gateway_id=gateway_id)


def _extension_problems(csr: x509.CertificateSigningRequest, kind: Kind) -> list[str]:
    problems = []
    for ext in csr.extensions:
        value = ext.value
        if type(value) not in _ALLOWED_EXTS:
            problems.append(f"extension {ext.oid.dotted_string} is not allowed in a gateway CSR")
        elif isinstance(value, x509.SubjectAlternativeName):
            others = [g for g in value if not isinstance(g, x509.UniformResourceIdentifier)]
            if others:
                problems.append(f"only a URI may be requested as SAN, not {others}")
        elif isinstance(value, x509.BasicConstraints) and value.ca:
            problems.append("a gateway may not ask to be a CA")
        elif isinstance(value, x509.KeyUsage):
            asked = {
                n
                for n in (
                    "key_cert_sign",
                    "crl_sign",
                    "key_encipherment",
                    "data_encipherment",
                    "key_agreement",
                    "content_commitment",
                )
                if getattr(value, n)
            }
            if asked:
                problems.append(f"key usage {sorted(asked)} is not allowed, only digitalSignature")
        elif isinstance(value, x509.ExtendedKeyUsage):
            allowed = {ExtendedKeyUsageOID.CLIENT_AUTH} if kind is Kind.TLS else set()
            extra = [u.dotted_string for u in value if u not in allowed]
            if extra:
                problems.append(f"extended key usage {extra} is not allowed for a {kind} key")
    return problems
