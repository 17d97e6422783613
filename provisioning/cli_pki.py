"""``provision ca|gateway|broker-cert|operator|rotate``: the site CA and every certificate.

Heavy imports (cryptography, tomlkit) happen inside the commands so that
``edgectl --help`` stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provisioning.cli_common import CaDir, Days, JsonFlag, PassEnv, PassFile

if TYPE_CHECKING:
    from provisioning.ca import SiteCA
    from provisioning.keys import KeyType

__all__ = ["register"]

ca_app = typer.Typer(help="The site CA: create it, sign gateway CSRs.", no_args_is_help=True)
gateway_app = typer.Typer(
    help="Gateway identity: keys, certificates, gateway.toml.", no_args_is_help=True
)


class KeyTypeChoice(StrEnum):
    ed25519 = "ed25519"
    p256 = "p256"


class CsrKind(StrEnum):
    signing = "signing"
    tls = "tls"


Site = Annotated[str, typer.Option("--site", help="Site name, e.g. 'hq' (A-Z a-z 0-9 - . _).")]
GatewayId = Annotated[str, typer.Option("--id", help="Gateway id, unique in the site.")]
OutDir = Annotated[Path, typer.Option("--out", help="Output directory (created 0700).")]
Broker = Annotated[
    str, typer.Option("--broker", help="Broker URL written to gateway.toml (mqtts://host:port).")
]
_DEFAULT_BROKER = "mqtts://localhost:8883"


def _open_ca(ca_dir: Path, file: Path | None, env: str | None) -> SiteCA:
    from provisioning.ca import open_ca
    from provisioning.passphrase import PassphraseSource

    return open_ca(ca_dir, PassphraseSource(file=file, env=env, what="CA key"))


@ca_app.command("init")
def ca_init(
    site: Site,
    out: OutDir,
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--key-type", help="CA key type.")
    ] = KeyTypeChoice.ed25519,
    passphrase_file: PassFile = None,
    passphrase_env: PassEnv = None,
    days: Days = None,
    as_json: JsonFlag = False,
) -> None:
    """Create the site CA: a passphrase-encrypted key and a self-signed certificate."""
    from provisioning import ui
    from provisioning.ca import init_ca
    from provisioning.certs import CA_DAYS
    from provisioning.identity import check_name
    from provisioning.keys import fingerprint
    from provisioning.passphrase import PassphraseSource

    with ui.command("ca init", as_json) as o:
        check_name(site, "site", "--site")
        source = PassphraseSource(file=passphrase_file, env=passphrase_env, what="CA key")
        secret = source.read(new=True)
        kind: KeyType = "ed25519" if key_type is KeyTypeChoice.ed25519 else "p256"
        ca = init_ca(out, site, kind, secret, days=days or CA_DAYS)
        o.written(
            f"Site CA for {site!r} created",
            {"ca_key": out / "ca.key", "ca_cert": out / "ca.pem"},
            {
                "site": site,
                "key_type": kind,
                "not_after": ca.cert.not_valid_after_utc.isoformat(timespec="seconds"),
                "ca_key_sha256": fingerprint(ca.key),
            },
            [
                "keep this directory and its passphrase offline, backed up separately",
                f"edgectl provision gateway create --ca {out} --site {site} --id gw1 --out gw1",
            ],
        )


@ca_app.command("sign")
def ca_sign(
    ca: CaDir,
    csr: Annotated[Path, typer.Option("--csr", help="CSR from 'provision gateway csr'.")],
    out: Annotated[Path, typer.Option("--out", help="Certificate file to write.")],
    kind: Annotated[
        CsrKind | None,
        typer.Option("--kind", help="signing or tls (default: from the CSR's key usage)."),
    ] = None,
    passphrase_file: PassFile = None,
    passphrase_env: PassEnv = None,
    days: Days = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a gateway CSR strictly and sign it with the site CA."""
    from provisioning import ui
    from provisioning.certs import LEAF_DAYS, Kind
    from provisioning.identity import sign_csr

    with ui.command("ca sign", as_json) as o:
        site_ca = _open_ca(ca, passphrase_file, passphrase_env)
        want = None if kind is None else Kind(kind.value)
        w = sign_csr(site_ca, csr, out, kind=want, days=days or LEAF_DAYS)
        o.written(
            f"Signed the {w.facts['kind']} CSR of {w.facts['gateway']!r}",
            w.files,
            w.facts,
            [
                f"copy {out} to the gateway, then: edgectl provision gateway install-cert "
                f"--dir DIR --cert {out.name} --ca ca.pem"
            ],
        )


@gateway_app.command("create")
def gateway_create(
    gateway_id: GatewayId,
    site: Site,
    ca: CaDir,
    out: OutDir,
    broker: Broker = _DEFAULT_BROKER,
    passphrase_file: PassFile = None,
    passphrase_env: PassEnv = None,
    days: Days = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a gateway's signing key, TLS key, their certificates and gateway.toml."""
    from provisioning import ui
    from provisioning.certs import LEAF_DAYS
    from provisioning.identity import check_name, create_gateway

    with ui.command("gateway create", as_json) as o:
        check_name(gateway_id, "gateway id", "--id")
        site_ca = _open_ca(ca, passphrase_file, passphrase_env)
        w = create_gateway(
            site_ca, out, gateway_id, site=site, broker_url=broker, days=days or LEAF_DAYS
        )
        o.written(
            f"Gateway {gateway_id!r} of site {site!r} created",
            w.files,
            w.facts,
            [
                f"edgectl provision device add --config {out}/gateway.toml --name ... "
                "--driver ... --option ...",
                f"edgectl provision check --config {out}/gateway.toml",
            ],
        )


@gateway_app.command("csr")
def gateway_csr(
    gateway_id: GatewayId,
    site: Site,
    out: OutDir,
    broker: Broker = _DEFAULT_BROKER,
    as_json: JsonFlag = False,
) -> None:
    """On the gateway: make both keys (they never leave it) and two CSRs for the CA."""
    from provisioning import ui
    from provisioning.identity import check_name, make_gateway_csrs

    with ui.command("gateway csr", as_json) as o:
        check_name(site, "site", "--site")
        check_name(gateway_id, "gateway id", "--id")
        w = make_gateway_csrs(out, site, gateway_id, broker_url=broker)
        o.written(
            f"Keys and CSRs for gateway {gateway_id!r} of site {site!r}",
            w.files,
            w.facts,
            [
                "copy signing.csr and tls.csr (not the keys) to the CA laptop and run:",
                "edgectl provision ca sign --ca CA --csr signing.csr --out signing.crt",
                "edgectl provision ca sign --ca CA --csr tls.csr --out tls.crt",
            ],
        )


@gateway_app.command("install-cert")
def gateway_install_cert(
    directory: Annotated[Path, typer.Option("--dir", help="The gateway directory.")],
    cert: Annotated[Path, typer.Option("--cert", help="Certificate signed by the site CA.")],
    ca_cert: Annotated[
        Path | None,
        typer.Option("--ca", help="Site CA certificate (default: ca.pem in --dir)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Install a signed certificate: it must match a local key and chain to the CA."""
    from provisioning import ui
    from provisioning.identity import install_cert

    with ui.command("gateway install-cert", as_json) as o:
        w = install_cert(directory, cert, ca_cert)
        o.written(f"Installed the {w.facts['kind']} certificate", w.files, w.facts)


def broker_cert(
    ca: CaDir,
    host: Annotated[str, typer.Option("--host", help="Broker host name (or IP) clients use.")],
    out: OutDir,
    ip: Annotated[
        list[str] | None, typer.Option("--ip", help="Extra IP address SAN (repeatable).")
    ] = None,
    passphrase_file: PassFile = None,
    passphrase_env: PassEnv = None,
    days: Days = None,
    as_json: JsonFlag = False,
) -> None:
    """A server certificate for the MQTT broker (serverAuth, SAN DNS/IP)."""
    from provisioning import ui
    from provisioning.certs import LEAF_DAYS
    from provisioning.identity import make_broker_cert

    with ui.command("broker-cert", as_json) as o:
        site_ca = _open_ca(ca, passphrase_file, passphrase_env)
        w = make_broker_cert(site_ca, host, list(ip or []), out, days=days or LEAF_DAYS)
        o.written(
            f"Broker certificate for {host!r}",
            w.files,
            w.facts,
            [
                "mosquitto.conf: cafile ca.pem / certfile broker.crt / keyfile broker.key",
                "                require_certificate true / use_identity_as_username true",
            ],
        )


def operator(
    ca: CaDir,
    name: Annotated[str, typer.Option("--name", help="Operator name (A-Z a-z 0-9 - . _).")],
    role: Annotated[str, typer.Option("--role", help="Role, e.g. commander (in the OU).")],
    out: OutDir,
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--key-type", help="Key type.")
    ] = KeyTypeChoice.p256,
    passphrase_file: PassFile = None,
    passphrase_env: PassEnv = None,
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Lifetime, days.")] = 365,
    as_json: JsonFlag = False,
) -> None:
    """A person's client certificate (clientAuth, role in OU), for downlink commands."""
    from provisioning import ui
    from provisioning.identity import check_name, make_operator

    with ui.command("operator", as_json) as o:
        check_name(name, "operator name", "--name")
        check_name(role, "role", "--role")
        site_ca = _open_ca(ca, passphrase_file, passphrase_env)
        kind: KeyType = "ed25519" if key_type is KeyTypeChoice.ed25519 else "p256"
        w = make_operator(site_ca, name, role, out, key_type=kind, days=days)
        o.written(f"Operator {name!r} ({role})", w.files, w.facts)


def rotate(
    config: Annotated[Path, typer.Option("--config", help="The gateway's gateway.toml.")],
    ca: CaDir,
    passphrase_file: PassFile = None,
    passphrase_env: PassEnv = None,
    days: Days = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace the gateway's signing key; keep the old certificate for consumers."""
    from provisioning import ui
    from provisioning.certs import LEAF_DAYS
    from provisioning.rotate import rotate_signing_key

    with ui.command("rotate", as_json) as o:
        site_ca = _open_ca(ca, passphrase_file, passphrase_env)
        w = rotate_signing_key(config, site_ca, days=days or LEAF_DAYS)
        o.written(
            "Signing key rotated",
            w.files,
            w.facts,
            [
                "restart the gateway: its next birth message announces the new key and the "
                "previous ones",
                "consumers keep trusting the old key until they have drained its batches",
            ],
        )


def register(app: typer.Typer) -> None:
    """Attach these commands to the ``provision`` group."""
    app.add_typer(ca_app, name="ca")
    app.add_typer(gateway_app, name="gateway")
    app.command("broker-cert")(broker_cert)
    app.command("operator")(operator)
    app.command("rotate")(rotate)
