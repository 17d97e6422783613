"""Write and edit ``gateway.toml`` with tomlkit, keeping the installer's comments and layout.

Every edit is validated before it is written (the gateway's own config model, and the
driver's option model when the driver can be loaded) and written atomically with the
file's previous mode, so a typo never leaves a gateway with a config it cannot start on.

tomlkit keeps the comment lines that precede a table header inside the *previous* table.
Adding or removing a device table would therefore move or drop the comment above the next
section; :func:`_take_trailing` and :func:`_put_trailing` carry those lines across.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import Comment, Item, Null, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from edgesdk import driver
from edgesdk.config import parse
from edgesdk.errors import ConfigError, DriverUnavailableError
from gateway import config as gwconfig
from provisioning.files import PUBLIC, read_bytes, write_file

__all__ = [
    "ConfigFile",
    "parse_option",
    "render_gateway_toml",
    "validate_device",
]


def render_gateway_toml(*, site: str, gateway_id: str, broker_url: str) -> str:
    """A new, commented gateway.toml pointing at the files ``gateway create`` writes."""
    doc = tomlkit.document()
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    for line in (
        f"gateway.toml for gateway {gateway_id!r} at site {site!r}",
        f"written by 'edgectl provision' on {today}; every key: docs/configuration.md.",
        "Paths are relative to this file. Check it with:",
        "  edgectl provision check --config gateway.toml",
    ):
        doc.add(tomlkit.comment(line))
    doc.add(tomlkit.nl())

    ident = tomlkit.table()
    ident.add("site", site)
    ident.add("id", gateway_id)
    ident.add("data_dir", "data")
    ident["data_dir"].comment("durable store of batches not yet acknowledged upstream")
    ident.add("signing_key", "signing.key")
    ident["signing_key"].comment("Ed25519, signs every batch; 0600, never leaves this box")
    ident.add("signing_cert", "signing.crt")
    ident.add("ca_cert", "ca.pem")
    ident["ca_cert"].comment("site CA: 'provision check' verifies the chain against it")
    prev = tomlkit.array()
    ident.add("previous_signing_certs", prev)
    ident["previous_signing_certs"].comment(
        "rotated-out keys, announced in the birth message until consumers have drained"
    )
    doc.add("gateway", ident)
    doc.add(tomlkit.nl())

    uplink = tomlkit.table()
    uplink.add(tomlkit.comment("MQTT broker upstream; mutual TLS with the site CA"))
    uplink.add("url", broker_url)
    uplink.add("ca", "ca.pem")
    uplink["ca"].comment("CA that signed the broker's certificate")
    uplink.add("cert", "tls.crt")
    uplink.add("key", "tls.key")
    uplink["key"].comment("P-256 TLS client key, 0600")
    doc.add("uplink", uplink)
    doc.add(tomlkit.nl())

    doc.add(tomlkit.comment("Devices: edgectl provision device add --config gateway.toml ..."))
    doc.add(tomlkit.comment("or edgectl provision scan modbus --url ... --add --config ..."))
    doc.add("devices", tomlkit.table())
    return tomlkit.dumps(doc)


def parse_option(raw: str) -> tuple[list[str], Any]:
    """``KEY=VALUE`` from ``--option``: the value as a TOML value where it parses as one.

    ``port=502`` gives an integer, ``url=tcp://h:502`` (not TOML) a string, and
    ``version="1.0"`` a string on purpose. ``a.b=1`` sets the nested key ``a.b``.
    """
    key, sep, text = raw.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError(
            f"--option {raw!r} is not KEY=VALUE",
            fix="write it as --option name=value, e.g. --option url=tcp://127.0.0.1:502",
        )
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return parts, text
    return parts, parsed["v"] if list(parsed) == ["v"] else text


def validate_device(name: str, table: Mapping[str, Any], *, file: str, text: str) -> None:
    """Validate a device's options with its driver's model (DriverUnavailableError if none)."""
    drv = str(table.get("driver", ""))
    try:
        cls = driver.load(drv)
    except DriverUnavailableError as exc:
        raise DriverUnavailableError(
            f"{exc}; the options of device {name!r} cannot be checked without the driver "
            "(install it, or pass --no-validate to add the device unchecked)"
        ) from exc
    prefix = f"devices.{name}.options"
    try:
        parse(cls.config_type, dict(table.get("options", {})), file=file, prefix=prefix)
    except ConfigError as exc:
        line = gwconfig.line_of(text, exc.key)
        raise ConfigError(exc.reason, file=file, key=exc.key, fix=exc.fix, line=line) from exc


def _is_trivia(item: Item) -> bool:
    return isinstance(item, Comment | Whitespace)


def _last_item(container: Container) -> Item | None:
    """The last real item of a body (tomlkit leaves ``Null`` placeholders after deletes)."""
    for _, item in reversed(container.body):
        if not isinstance(item, Null):
            return item
    return None


def _last_container(container: Container) -> Container:
    """The container whose body ends the text of ``container`` (deepest last sub-table)."""
    last = _last_item(container)
    if isinstance(last, Table):
        return _last_container(last.value)
    return container


def _take_trailing(container: Container) -> list[tuple[Any, Item]]:
    """Remove and return the trailing comment/blank lines that end ``container``'s text."""
    last = _last_container(container)
    taken: list[tuple[Any, Item]] = []
    while last.body and last.body[-1][0] is None and _is_trivia(last.body[-1][1]):
        taken.insert(0, last.body.pop())
    return taken


def _ends_blank(container: Container) -> bool:
    return isinstance(_last_item(_last_container(container)), Whitespace)


def _put_trailing(
    container: Container, items: list[tuple[Any, Item]], *, more_follows: bool = True
) -> None:
    """Put ``items`` back at the end of ``container``'s text, with one blank line before."""
    last = _last_container(container)
    if not items and not more_follows:
        return
    if _ends_blank(container):
        while items and isinstance(items[0][1], Whitespace):
            items = items[1:]
    elif not items or not isinstance(items[0][1], Whitespace):
        items = [(None, Whitespace("\n")), *items]
    last.body.extend(items)


class ConfigFile:
    """A gateway.toml opened for editing: tomlkit document, text, path and mode."""

    def __init__(self, path: Path) -> None:
        self.path = path
        raw = read_bytes(path, "gateway config")
        try:
            self.text = raw.decode("utf-8")
            self.doc: TOMLDocument = tomlkit.parse(self.text)
        except (UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
            raise ConfigError(
                f"not valid TOML: {exc}", file=str(path), fix="correct the TOML syntax"
            ) from exc
        self.mode = stat.S_IMODE(os.stat(path).st_mode) if path.exists() else PUBLIC

    def devices(self) -> dict[str, Any]:
        """Plain ``{name: table}`` of the devices in the file."""
        devices = self.doc.get("devices")
        return dict(devices.unwrap()) if isinstance(devices, Table) else {}

    def validate(self) -> gwconfig.GatewayConfig:
        """Validate the edited document as the gateway would load it."""
        text = tomlkit.dumps(self.doc)
        return gwconfig.loads(text, file=str(self.path), base=self.path.resolve().parent)

    def add_device(
        self,
        name: str,
        table: Mapping[str, Any],
        *,
        check_driver: bool = True,
    ) -> None:
        """Add ``[devices.<name>]`` (refusing duplicates), validate, write."""
        if name in self.devices():
            raise ConfigError(
                f"a device named {name!r} already exists",
                file=str(self.path),
                key=f"devices.{name}",
                fix=f"choose another --name, or first: provision device remove --name {name}",
            )
        if "devices" not in self.doc:
            self.doc.add(tomlkit.nl())
            self.doc.add("devices", tomlkit.table())
        devices = self.doc["devices"]
        assert isinstance(devices, Table)
        trailing = _take_trailing(devices.value)
        new = tomlkit.table()
        if not _ends_blank(devices.value):
            new.trivia.indent = "\n"
        options = tomlkit.table()
        for key, value in table.items():
            if key != "options":
                new.add(key, value)
        for key, value in dict(table.get("options", {})).items():
            options.add(key, value)
        new.add("options", options)
        devices.add(name, new)
        _put_trailing(devices.value, trailing, more_follows=_last_item(self.doc) is not devices)
        self.save(check_device=name if check_driver else None)

    def remove_device(self, name: str) -> dict[str, Any]:
        """Remove a device (and its options) and write; returns what was removed."""
        devices = self.doc.get("devices")
        if not isinstance(devices, Table) or name not in devices:
            known = ", ".join(self.devices()) or "none"
            raise ConfigError(
                f"no device named {name!r} (devices: {known})",
                file=str(self.path),
                key=f"devices.{name}",
                fix="check the name with: provision device list",
            )
        body = devices.value.body
        idx = next(i for i, (k, _) in enumerate(body) if k is not None and k.key == name)
        removed = body[idx][1]
        trailing = _take_trailing(removed.value) if isinstance(removed, Table) else []
        plain = dict(removed.unwrap())
        del devices[name]
        # the removed table's trailing lines (a blank line, the comment above the next
        # section) stay where the table was, without doubling a blank line before them
        before = [item for _, item in body[:idx] if not isinstance(item, Null)]
        last = before[-1] if before else None
        blank = _ends_blank(last.value) if isinstance(last, Table) else isinstance(last, Whitespace)
        while blank and trailing and isinstance(trailing[0][1], Whitespace):
            trailing = trailing[1:]
        at_end = all(isinstance(item, Null) for _, item in body[idx:])
        if not trailing and at_end and _last_item(self.doc) is devices:
            # the blank line that separated the removed table from what precedes it
            while body[:idx] and isinstance(body[idx - 1][1], Whitespace | Null):
                if isinstance(body[idx - 1][1], Whitespace):
                    del body[idx - 1]
                    idx -= 1
                    break
                idx -= 1
        if idx < len(body) and isinstance(body[idx][1], Null):
            body[idx : idx + 1] = trailing
        else:
            body[idx:idx] = trailing
        self.save()
        return plain

    def save(self, *, check_device: str | None = None) -> None:
        """Validate, then replace the file atomically, keeping its mode."""
        text = tomlkit.dumps(self.doc)
        self.validate()
        if check_device is not None:
            validate_device(
                check_device, self.devices()[check_device], file=str(self.path), text=text
            )
        write_file(self.path, text.encode("utf-8"), mode=self.mode, overwrite=True)
        self.text = text
        self.doc = tomlkit.parse(text)  # edits above may have bypassed tomlkit's index
