"""Writing key material and configs safely: exact modes, atomic replace, no clobbering.

Every file is written to a temporary file in the same directory, flushed to disk, given
its mode explicitly (the umask is not trusted), then moved into place with one rename, so
a crash never leaves a half-written key or config behind. New outputs are linked into
place rather than renamed, which fails when the name exists: an existing CA key is never
overwritten by accident.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from provisioning.errors import FileAccessError

__all__ = [
    "PRIVATE",
    "PUBLIC",
    "ensure_dir",
    "private_file_problem",
    "read_bytes",
    "shred",
    "write_file",
]

PRIVATE = 0o600
"""Mode of private keys and of everything in the CA directory."""
PUBLIC = 0o644
"""Mode of certificates and configs outside the CA directory."""


def ensure_dir(path: Path, mode: int = 0o700) -> Path:
    """Create ``path`` (and parents) with ``mode`` if missing; an existing dir keeps its mode."""
    try:
        if not path.is_dir():
            path.mkdir(parents=True, mode=mode)
            os.chmod(path, mode)
    except OSError as exc:
        raise FileAccessError(
            f"cannot create directory {path}: {exc.strerror}; choose a directory you can write to"
        ) from exc
    return path


def read_bytes(path: Path, what: str) -> bytes:
    """The file's bytes, or a FileAccessError that says which file was expected and why."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FileAccessError(f"{what} not found: {path}; check the path") from exc
    except OSError as exc:
        raise FileAccessError(f"cannot read {what} {path}: {exc.strerror}") from exc


def write_file(path: Path, data: bytes, *, mode: int, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically with exactly ``mode``.

    With ``overwrite=False`` an existing ``path`` is an error (checked atomically).
    """
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise FileAccessError(f"cannot write in {directory}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise FileAccessError(
                    f"{path} already exists; refusing to overwrite it "
                    "(choose another --out directory or move the file away)"
                ) from exc
            os.unlink(tmp)
        _sync_dir(directory)
    except OSError as exc:
        raise FileAccessError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def _sync_dir(directory: Path) -> None:
    """Make a rename durable: fsync the directory that holds it (POSIX)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def shred(path: Path) -> None:
    """Overwrite a file with random bytes, flush it to disk, then unlink it.

    Best effort: on copy-on-write or flash storage the old blocks may survive; the real
    protection is that the key never left a 0600 file on an encrypted disk.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FileAccessError(f"cannot open {path} to erase it: {exc.strerror}") from exc
    try:
        size = os.fstat(fd).st_size
        written = 0
        while written < size:
            written += os.write(fd, os.urandom(min(65536, size - written)))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.unlink(path)


def private_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a properly protected private file, or None when it is."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot stat {path}: {exc.strerror}"
    problems = []
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        problems.append(f"mode is {stat.S_IMODE(st.st_mode):04o}, must be 0600")
    if st.st_uid != os.getuid():
        problems.append(f"owned by uid {st.st_uid}, not by the user running the gateway")
    return "; ".join(problems) or None
