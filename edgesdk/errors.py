"""One exception tree for the whole project.

Every error raised on purpose by edgesdk, the gateway, the drivers, the emulators and the
provisioning CLI derives from :class:`EdgeError`, split by the phase in which it happens.
Vendor exceptions (pymodbus, pyserial, aiomqtt, cryptography) are chained with
``raise ... from`` so the original cause is never lost.
"""

from __future__ import annotations

__all__ = [
    "CommandError",
    "ConfigError",
    "ConnectionLostError",
    "DeviceTimeoutError",
    "DriverUnavailableError",
    "EdgeError",
    "ProtocolError",
    "SignatureError",
    "StoreError",
    "UnknownKeyError",
]


class EdgeError(Exception):
    """Root of every error edgesdk raises on purpose."""


class ConfigError(EdgeError):
    """A configuration is invalid.

    The message names the file (when there is one), the key and the fix, for example
    ``gateway.toml: devices.panel1.poll_interval: must be >= 0.1 (got 0.01); fix: ...``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        fix: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.key = key
        self.fix = fix
        self.line = line
        self.reason = message
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        head = f"{where}{key}: " if key else where
        tail = f"; fix: {fix}" if fix else ""
        super().__init__(f"{head}{message}{tail}")


class DriverUnavailableError(EdgeError):
    """A driver cannot be loaded: unknown name, or a missing optional dependency."""


class ConnectionLostError(EdgeError):
    """The link to a device, broker or peer dropped or could not be opened."""


class DeviceTimeoutError(EdgeError):
    """A device did not answer in time."""


class ProtocolError(EdgeError):
    """Malformed bytes or messages from a device or peer."""


class CommandError(EdgeError):
    """A command could not be carried out (unknown point, unsupported by the device...)."""


class SignatureError(EdgeError):
    """A signed message failed verification; nothing in it may be trusted."""


class UnknownKeyError(SignatureError):
    """A signed message names a key (kid) that is not trusted."""


class StoreError(EdgeError):
    """The durable store failed (disk full, corruption, migration)."""
