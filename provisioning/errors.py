"""Exit codes of ``edgectl provision`` and the errors that map onto them.

Scripts that drive an installation branch on the exit code, so every failure is one of a
few documented codes (``docs/installer-guide.md``). The errors below complete the project's
single tree (:class:`~edgesdk.errors.EdgeError`) with the two kinds of failure only the
provisioning tools have: cryptographic material that cannot be opened (a wrong passphrase,
a corrupt key) and a check that ran and said no (a certificate that does not chain, a
bundle that was tampered with or rolled back).
"""

from __future__ import annotations

import enum

from edgesdk.errors import ConfigError, DriverUnavailableError, EdgeError, SignatureError

__all__ = [
    "CryptoError",
    "ExitCode",
    "FileAccessError",
    "VerificationError",
    "exit_code_for",
]


class ExitCode(enum.IntEnum):
    """What ``edgectl provision`` returns; stable, documented, for scripts."""

    OK = 0
    FAILED = 1  # a check or verification ran and failed
    USAGE = 2  # bad arguments or configuration (click also uses 2 for usage errors)
    CRYPTO = 3  # wrong passphrase, unreadable or mismatched key material
    FILES = 4  # an output already exists, or a file cannot be read/written
    DRIVER = 5  # a driver named in the config cannot be loaded


class CryptoError(EdgeError):
    """Key material cannot be used: wrong passphrase, corrupt or unsupported key."""


class VerificationError(EdgeError):
    """Something was checked and found wrong: a chain, a site, a digest, a sequence."""


class FileAccessError(EdgeError):
    """A file cannot be read or written, or writing it would overwrite something."""


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an error raised by a provisioning command."""
    if isinstance(exc, VerificationError | SignatureError):
        return ExitCode.FAILED
    if isinstance(exc, CryptoError):
        return ExitCode.CRYPTO
    if isinstance(exc, FileAccessError):
        return ExitCode.FILES
    if isinstance(exc, DriverUnavailableError):
        return ExitCode.DRIVER
    if isinstance(exc, ConfigError):
        return ExitCode.USAGE
    return ExitCode.FAILED
