"""``provision check``: is this gateway ready? One row per check, each with what to fix.

Local checks first (config, files and modes, key/certificate pairs, chain, expiry,
identity), then the network: every enabled device answers its driver's ``probe`` and the
broker accepts the gateway's TLS client certificate. Network checks run concurrently,
each bounded by ``--timeout``, so a dead site fails in seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from edgesdk import driver
from edgesdk.errors import ConfigError, DriverUnavailableError, EdgeError
from gateway import config as gwconfig
from provisioning import certs, keys
from provisioning.ca import load_ca_cert
from provisioning.errors import CryptoError, FileAccessError, VerificationError
from provisioning.files import private_file_problem

__all__ = ["Check", "Status", "local_checks", "network_checks"]


class Status(enum.StrEnum):
    """The outcome of one check."""

    PASS = "pass"  # noqa: S105 - a check result, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    """One row of the report."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "check": self.name,
            "status": str(self.status),
            "detail": self.detail,
            "fix": self.fix,
        }


class _Rows:
    def __init__(self) -> None:
        self.rows: list[Check] = []

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.rows.append(Check(name, status, detail, fix))


def local_checks(config_path: Path) -> tuple[list[Check], gwconfig.GatewayConfig | None]:
    """Config, files, modes, pairs, chain, expiry and identity; no network."""
    r = _Rows()
    try:
        cfg = gwconfig.load(config_path)
    except ConfigError as exc:
        r.add("config", Status.FAIL, _where(exc), exc.fix or "correct the config")
        return r.rows, None
    r.add("config", Status.PASS, f"{config_path} is valid ({len(cfg.devices)} devices)")
    ident, up = cfg.gateway, cfg.uplink
    files = {
        "gateway.signing_key": ident.signing_key,
        "gateway.signing_cert": ident.signing_cert,
        "gateway.ca_cert": ident.ca_cert,
        "uplink.ca": up.ca,
        "uplink.cert": up.cert,
        "uplink.key": up.key,
    }
    for i, prev in enumerate(ident.previous_signing_certs):
        files[f"gateway.previous_signing_certs[{i}]"] = prev
    present = {}
    for key, path in files.items():
        if path is None:
            continue
        if not path.is_file():
            r.add(
                f"file {key}", Status.FAIL, f"{path} does not exist", f"create it or correct {key}"
            )
            continue
        present[key] = path
    for key in ("gateway.signing_key", "uplink.key"):
        if key in present:
            problem = private_file_problem(present[key])
            if problem:
                r.add(f"mode {key}", Status.FAIL, problem, f"chmod 600 {present[key]}; chown it")
            else:
                r.add(f"mode {key}", Status.PASS, f"{present[key].name} is 0600, owned by you")
    _data_dir(r, ident.data_dir)

    ca = _ca(r, present.get("gateway.ca_cert"))
    site_urn = certs.gateway_urn(ident.site, ident.id)
    signing = _pair(
        r,
        "signing",
        present,
        "gateway.signing_key",
        "gateway.signing_cert",
        ident.signing_key_passphrase,
    )
    tls = _pair(r, "tls", present, "uplink.key", "uplink.cert", up.key_passphrase)
    for label, cert in (("signing", signing), ("tls", tls)):
        if cert is None:
            continue
        _identity(r, label, cert, site_urn)
        _chain_and_expiry(r, label, cert, ca)
    for i, _ in enumerate(ident.previous_signing_certs):
        key = f"gateway.previous_signing_certs[{i}]"
        if key in present:
            _previous(r, f"previous cert {i + 1}", present[key], ca)
    if ca is not None:
        ca_site = certs.site_of_ca(ca)
        if ca_site != ident.site:
            r.add(
                "site",
                Status.FAIL,
                f"CA is for site {ca_site!r}, config says {ident.site!r}",
                "use the CA of this site, or correct gateway.site",
            )
        _expiry(r, "expiry ca", ca)
    if not up.tls:
        r.add("uplink tls", Status.WARN, f"{up.url} is not TLS", "use mqtts:// outside tests")
    elif up.cert is None:
        r.add("uplink tls", Status.WARN, "no client certificate", "set uplink.cert and uplink.key")
    return r.rows, cfg


def _where(exc: ConfigError) -> str:
    """``file:line: key: reason`` without the fix (it has its own column)."""
    place = f"{exc.file}:{exc.line}: " if exc.line else (f"{exc.file}: " if exc.file else "")
    return f"{place}{exc.key + ': ' if exc.key else ''}{exc.reason}"


def _data_dir(r: _Rows, path: Path) -> None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if os.access(probe, os.W_OK | os.X_OK):
        state = "exists" if path.exists() else "will be created"
        r.add("data_dir", Status.PASS, f"{path} {state}, writable")
    else:
        r.add(
            "data_dir", Status.FAIL, f"{probe} is not writable", f"fix the permissions of {probe}"
        )


def _ca(r: _Rows, path: Path | None) -> x509.Certificate | None:
    if path is None:
        r.add(
            "ca",
            Status.WARN,
            "gateway.ca_cert is not set: the chain is not checked",
            'set gateway.ca_cert = "ca.pem"',
        )
        return None
    try:
        return load_ca_cert(path)
    except (CryptoError, VerificationError, FileAccessError) as exc:
        r.add("ca", Status.FAIL, str(exc), "put the site CA certificate at gateway.ca_cert")
        return None


def _pair(
    r: _Rows,
    label: str,
    present: dict[str, Path],
    key_key: str,
    cert_key: str,
    secret: gwconfig.SecretRef | None,
) -> x509.Certificate | None:
    """Load the certificate and check its key matches; the certificate for further checks."""
    if cert_key not in present:
        return None
    name = f"key pair {label}"
    try:
        cert = certs.load_cert(present[cert_key], f"{label} certificate")
    except (CryptoError, FileAccessError) as exc:
        r.add(f"certificate {label}", Status.FAIL, str(exc), "restore or re-issue it")
        return None
    if key_key not in present:
        return cert  # the missing key has its own row; the certificate is still checked
    try:
        password = secret.read() if secret is not None else None
        key = keys.load_private_key(present[key_key], password, f"{label} key")
    except (ConfigError, CryptoError, FileAccessError) as exc:
        r.add(name, Status.FAIL, str(exc), "restore the file or re-issue the key")
        return cert
    if not keys.same_key(key, certs.public_key_of(cert)):
        r.add(
            name,
            Status.FAIL,
            f"{present[key_key].name} does not match {present[cert_key].name}",
            "install the certificate issued for this key (or re-create both)",
        )
        return cert
    r.add(
        name,
        Status.PASS,
        f"{present[key_key].name} matches {present[cert_key].name} ({keys.key_type_of(key)})",
    )
    return cert


def _identity(r: _Rows, label: str, cert: x509.Certificate, urn: str) -> None:
    names = certs.uris(cert)
    if urn not in names:
        r.add(
            f"identity {label}",
            Status.FAIL,
            f"certificate names {names or 'no URI'}, expected {urn}",
            "issue the certificate for this site and gateway id",
        )
        return
    problems = []
    usage = (
        cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if _has(cert, x509.KeyUsage)
        else None
    )
    if usage is None or not usage.digital_signature:
        problems.append("keyUsage lacks digitalSignature")
    if label == "tls":
        from cryptography.x509.oid import ExtendedKeyUsageOID

        eku: list[x509.ObjectIdentifier] = (
            list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
            if _has(cert, x509.ExtendedKeyUsage)
            else []
        )
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            problems.append("extendedKeyUsage lacks clientAuth")
    if problems:
        r.add(f"identity {label}", Status.FAIL, "; ".join(problems), "re-issue it with provision")
    else:
        r.add(f"identity {label}", Status.PASS, urn)


def _has(cert: x509.Certificate, ext: type[x509.ExtensionType]) -> bool:
    try:
        cert.extensions.get_extension_for_class(ext)
    except x509.ExtensionNotFound:
        return False
    return True


def _chain_and_expiry(
    r: _Rows, label: str, cert: x509.Certificate, ca: x509.Certificate | None
) -> None:
    if ca is not None:
        try:
            certs.check_issued_by(cert, ca, f"the {label} certificate")
            r.add(f"chain {label}", Status.PASS, f"issued by {ca.subject.rfc4514_string()}")
        except VerificationError as exc:
            r.add(f"chain {label}", Status.FAIL, str(exc), "re-issue it with this site's CA")
    _expiry(r, f"expiry {label}", cert)


def _expiry(r: _Rows, name: str, cert: x509.Certificate) -> None:
    problem = certs.expiry_problem(cert)
    if problem is None:
        r.add(name, Status.PASS, f"valid until {cert.not_valid_after_utc:%Y-%m-%d}")
    elif problem[0] == "warn":
        r.add(name, Status.WARN, problem[1], "renew it soon (provision rotate, or re-issue)")
    else:
        r.add(name, Status.FAIL, problem[1], "issue a new certificate (and check the clock)")


def _previous(r: _Rows, key: str, path: Path, ca: x509.Certificate | None) -> None:
    try:
        cert = certs.load_cert(path, "previous signing certificate")
        if ca is not None:
            certs.check_issued_by(cert, ca, key)
    except (CryptoError, VerificationError, FileAccessError) as exc:
        r.add(key, Status.FAIL, str(exc), "remove the entry or restore the file")
        return
    if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        r.add(
            key,
            Status.WARN,
            "expired: consumers can no longer use it",
            f"remove {path.name} from previous_signing_certs once consumers drained",
        )
    else:
        r.add(key, Status.PASS, f"{path.name}, kept until {cert.not_valid_after_utc:%Y-%m-%d}")


# -- network ------------------------------------------------------------------------------
async def _device(name: str, dev: gwconfig.DeviceConfig, cfg_file: str, wait: float) -> Check:
    row = f"device {name}"
    if not dev.enabled:
        return Check(row, Status.SKIP, "disabled in the config")
    try:
        drv = driver.create(
            dev.driver, dev.options, instance=name, file=cfg_file, prefix=f"devices.{name}.options"
        )
        async with asyncio.timeout(wait + 5.0):  # opening is bounded too
            health = await drv.probe(wait=wait)
    except DriverUnavailableError as exc:
        return Check(row, Status.FAIL, str(exc), "install the driver, or disable the device")
    except ConfigError as exc:
        return Check(row, Status.FAIL, _where(exc), exc.fix or "correct the device's options")
    except TimeoutError:
        return Check(
            row,
            Status.FAIL,
            f"{dev.driver}: no answer within {wait + 5:g}s",
            "check the device is powered, wired and at the configured address",
        )
    except (EdgeError, OSError) as exc:
        return Check(
            row,
            Status.FAIL,
            f"{dev.driver}: {exc}",
            "check the device is powered, wired and at the configured address",
        )
    state = health.state
    if state is driver.DriverState.OFFLINE:  # the first item was the driver's trouble report
        return Check(
            row,
            Status.FAIL,
            f"{dev.driver}: offline ({health.last_error or 'no detail'})",
            "check the device is powered, wired and at the configured address",
        )
    if state is driver.DriverState.DEGRADED:
        return Check(
            row,
            Status.WARN,
            f"{dev.driver}: degraded ({health.last_error})",
            "some requests fail: check wiring, addresses and the device's log",
        )
    return Check(row, Status.PASS, f"{dev.driver} answered ({state})")


async def _broker(cfg: gwconfig.GatewayConfig, wait: float) -> Check:
    import aiomqtt

    from gateway.uplink import tls_context

    up = cfg.uplink
    parts = urlsplit(up.url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (8883 if up.tls else 1883)
    where = f"{host}:{port}"
    try:
        password = up.key_passphrase.read() if up.key_passphrase else None
        ctx = tls_context(up, key_password=password)
    except ConfigError as exc:
        return Check("broker", Status.FAIL, exc.reason, exc.fix or "check uplink.ca/cert/key")
    # never the gateway's own client id: connecting with it would kick the gateway off
    client_id = (
        f"{up.client_id or f'{cfg.gateway.site}-{cfg.gateway.id}'}-check-{secrets.token_hex(3)}"
    )
    protocol = aiomqtt.ProtocolVersion.V5 if up.protocol == "5" else aiomqtt.ProtocolVersion.V311
    try:
        async with asyncio.timeout(wait):
            async with aiomqtt.Client(
                host,
                port,
                identifier=client_id,
                protocol=protocol,
                tls_context=ctx,
                timeout=wait,
            ):
                pass
    except TimeoutError:
        return Check(
            "broker",
            Status.FAIL,
            f"no MQTT answer from {where} within {wait:g}s",
            "check the broker runs and the firewall lets the gateway reach it",
        )
    except (aiomqtt.MqttError, OSError) as exc:
        return Check("broker", Status.FAIL, f"{where}: {exc}", _broker_fix(str(exc)))
    how = "TLS with client certificate" if ctx is not None and up.cert else "plain MQTT"
    return Check("broker", Status.PASS, f"connected to {where} ({how})")


def _broker_fix(message: str) -> str:
    text = message.lower()
    if "certificate verify failed" in text or "unknown ca" in text:
        return "the broker's certificate is not from uplink.ca (or the broker does not trust ours)"
    if "refused" in text or "errno 111" in text:
        return "nothing listens there: start the broker or correct uplink.url"
    if "certificate" in text or "handshake" in text or "alert" in text:
        return "the broker refused our client certificate: issue it from the CA the broker trusts"
    return "check uplink.url, the broker's log and the certificates"


async def _network(
    cfg: gwconfig.GatewayConfig, cfg_file: str, wait: float, done: Callable[[Check], None]
) -> list[Check]:
    async def one(coro: Any) -> Check:
        result: Check = await coro
        done(result)
        return result

    jobs = [one(_device(n, d, cfg_file, wait)) for n, d in cfg.devices.items()]
    jobs.append(one(_broker(cfg, wait)))
    return list(await asyncio.gather(*jobs))


def network_checks(
    cfg: gwconfig.GatewayConfig,
    cfg_file: str,
    timeout: float,
    done: Callable[[Check], None] = lambda _c: None,
) -> list[Check]:
    """Probe every device and the broker concurrently; ``done`` is called per finished row."""
    return asyncio.run(_network(cfg, cfg_file, timeout, done))
