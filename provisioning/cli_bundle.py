"""``provision bundle create|verify|install``: signed configs for offline gateways."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provisioning.cli_common import CaDir, JsonFlag, PassEnv, PassFile

if TYPE_CHECKING:
    from provisioning.bundle import Manifest
    from provisioning.ui import Output

__all__ = ["register"]

bundle_app = typer.Typer(
    help="Signed bundles: carry a gateway's config and certificates to it offline.",
    no_args_is_help=True,
)
BundlePassFile = Annotated[
    Path | None,
    typer.Option(
        "--bundle-passphrase-file",
        help="File whose first line is the bundle passphrase (for private keys).",
        dir_okay=False,
    ),
]
BundlePassEnv = Annotated[
    str | None,
    typer.Option(
        "--bundle-passphrase-env", help="Environment variable with the bundle passphrase."
    ),
]
BundleFileOpt = Annotated[Path, typer.Option("--bundle", help="The bundle file.", dir_okay=False)]
CaCert = Annotated[Path, typer.Option("--ca", help="Site CA certificate (ca.pem) or CA directory.")]
SiteOpt = Annotated[str | None, typer.Option("--site", help="Refuse a bundle for any other site.")]


def _show(o: Output, title: str, m: Manifest, extra: dict[str, object]) -> None:
    from rich.table import Table

    from provisioning import ui

    data = {
        "sequence": m.sequence,
        "site": m.site,
        "gateway": m.gateway,
        "created": m.created,
        "signer_kid": m.signer_kid.hex(),
        "files": [
            {
                "path": f.path,
                "size": f.size,
                "sha256": f.digest.hex(),
                "mode": f"{f.mode:04o}",
                "encrypted": f.nonce is not None,
            }
            for f in m.files
        ],
        **extra,
    }
    o.emit(data)
    if o.as_json:
        return
    ui.out.print(f"[bold green]{title}[/]")
    table = Table("file", "size", "sha256", "mode", "encrypted")
    for f in m.files:
        table.add_row(
            f.path,
            str(f.size),
            f.digest.hex()[:16] + "…",
            f"{f.mode:04o}",
            "yes" if f.nonce is not None else "no",
        )
    ui.out.print(table)
    ui.out.print(f"  site: {m.site}  gateway: {m.gateway}  sequence: {m.sequence}")
    for key, value in extra.items():
        ui.out.print(f"  {key}: {value}", highlight=False)


@bundle_app.command("create")
def bundle_create(
    config: Annotated[Path, typer.Option("--config", help="The gateway's gateway.toml.")],
    ca: CaDir,
    out: Annotated[Path, typer.Option("--out", help="Bundle file to write.", dir_okay=False)],
    include_keys: Annotated[
        bool, typer.Option("--include-keys", help="Also carry the private keys, encrypted.")
    ] = False,
    sequence: Annotated[
        int | None,
        typer.Option("--sequence", min=1, help="Sequence number (default: last used + 1)."),
    ] = None,
    bundle_passphrase_file: BundlePassFile = None,
    bundle_passphrase_env: BundlePassEnv = None,
    passphrase_file: PassFile = None,
    passphrase_env: PassEnv = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign the gateway's config and certificates (and keys, encrypted) into one file."""
    from edgesdk.errors import ConfigError
    from provisioning import ui
    from provisioning.bundle import build_bundle
    from provisioning.ca import open_ca
    from provisioning.files import PRIVATE, PUBLIC, write_file
    from provisioning.passphrase import PassphraseSource

    with ui.command("bundle create", as_json) as o:
        bundle_secret = None
        if include_keys:
            bundle_secret = PassphraseSource(
                file=bundle_passphrase_file,
                env=bundle_passphrase_env,
                what="bundle",
                option="--bundle-passphrase",
            ).read(new=True)
        elif bundle_passphrase_file or bundle_passphrase_env:
            raise ConfigError(
                "a bundle passphrase was given without --include-keys",
                fix="add --include-keys to carry the private keys, or drop the passphrase",
            )
        site_ca = open_ca(ca, PassphraseSource(file=passphrase_file, env=passphrase_env))
        last = site_ca.last_sequence()
        seq = sequence if sequence is not None else last + 1
        data, manifest = build_bundle(config, site_ca, sequence=seq, passphrase=bundle_secret)
        write_file(out, data, mode=PRIVATE if include_keys else PUBLIC)
        site_ca.record_sequence(seq)
        extra: dict[str, object] = {"bundle": str(out), "bytes": len(data)}
        if sequence is not None and sequence <= last:
            extra["warning"] = f"sequence {seq} is not above the last used ({last})"
        _show(o, f"Bundle {out} signed by the {site_ca.site!r} site CA", manifest, extra)


@bundle_app.command("verify")
def bundle_verify(
    bundle: BundleFileOpt,
    ca: CaCert,
    site: SiteOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a bundle's signature, site and every file digest (no passphrase needed)."""
    from provisioning import ui
    from provisioning.bundle import open_bundle
    from provisioning.ca import load_ca_cert
    from provisioning.files import read_bytes

    with ui.command("bundle verify", as_json) as o:
        manifest = open_bundle(read_bytes(bundle, "bundle"), load_ca_cert(ca), site=site)
        _show(o, f"Bundle {bundle} is valid", manifest, {})


@bundle_app.command("install")
def bundle_install(
    bundle: BundleFileOpt,
    ca: CaCert,
    to: Annotated[Path, typer.Option("--to", help="The gateway directory to install into.")],
    site: SiteOpt = None,
    bundle_passphrase_file: BundlePassFile = None,
    bundle_passphrase_env: BundlePassEnv = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify, refuse rollbacks, and install a bundle atomically into a gateway directory."""
    from provisioning import ui
    from provisioning.bundle import open_bundle
    from provisioning.bundle_install import install_bundle
    from provisioning.ca import load_ca_cert
    from provisioning.files import read_bytes
    from provisioning.passphrase import PassphraseSource

    with ui.command("bundle install", as_json) as o:
        manifest = open_bundle(read_bytes(bundle, "bundle"), load_ca_cert(ca), site=site)
        source = PassphraseSource(
            file=bundle_passphrase_file,
            env=bundle_passphrase_env,
            what="bundle",
            option="--bundle-passphrase",
        )
        install_bundle(manifest, to, source)
        _show(
            o,
            f"Installed bundle {manifest.sequence} into {to}",
            manifest,
            {"installed_to": str(to)},
        )
        if not as_json:
            ui.out.print(f"  next: edgectl provision check --config {to}/gateway.toml")


def register(app: typer.Typer) -> None:
    """Attach these commands to the ``provision`` group."""
    app.add_typer(bundle_app, name="bundle")
