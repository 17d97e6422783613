"""Encrypted PKCS#8 with a strong key derivation (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC).

``cryptography``'s ``BestAvailableEncryption`` writes PBES2 with only 2,048 PBKDF2
iterations and offers no way to raise it for PKCS#8 (``encryption_builder`` is for
OpenSSH and PKCS#12 only). The site CA key deserves more: OWASP recommends 600,000
iterations of PBKDF2-HMAC-SHA256. So the envelope (RFC 8018 PBES2, RFC 5958
EncryptedPrivateKeyInfo) is written here. It is a fixed structure of five ASN.1 types,
too small to justify a new dependency; the result is read back by ``cryptography``'s
standard loader and by ``openssl pkey`` (both tested), so nothing here decodes ASN.1.
"""

from __future__ import annotations

import base64
import os
import textwrap

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from provisioning.keys import PrivateKey

__all__ = ["ITERATIONS", "encrypted_pem"]

ITERATIONS = 600_000
"""PBKDF2-HMAC-SHA256 iterations (OWASP password storage guidance, 2023)."""

# DER encodings of the object identifiers used (tag 06, length, value).
_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
_OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_NULL = b"\x05\x00"


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, definite length (short or long form), content."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _integer(value: int) -> bytes:
    # non-negative only: one leading zero byte keeps the sign bit clear
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encrypted_pem(key: PrivateKey, passphrase: bytes, iterations: int = ITERATIONS) -> bytes:
    """``key`` as an ENCRYPTED PRIVATE KEY PEM (PBES2/PBKDF2-SHA256/AES-256-CBC)."""
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt, iv = os.urandom(16), os.urandom(16)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    aes_key = kdf.derive(passphrase)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    params = _seq(
        _seq(
            _OID_PBKDF2,
            _seq(_octets(salt), _integer(iterations), _seq(_OID_HMAC_SHA256, _NULL)),
        ),
        _seq(_OID_AES256_CBC, _octets(iv)),
    )
    der = _seq(_seq(_OID_PBES2, params), _octets(encrypted))
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return (
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n"
    ).encode()
