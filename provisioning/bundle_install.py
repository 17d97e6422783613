"""Install a verified bundle atomically, refusing rollbacks.

The new directory is staged beside the target (same filesystem): existing files are
hard-linked into it (so keys made on the gateway and the data store stay, without copying),
the bundle's files are written over them with their modes, then the staged directory and
the target are exchanged in one ``renameat2(RENAME_EXCHANGE)`` (Linux). Where that call is
missing, two renames are used and the window between them is a few microseconds. The
installed sequence number lives in the directory (``.bundle-state.json``), so it moves
with the files it describes. Stop the gateway while installing: a store being written
during the copy may lose what it writes after the links are made.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from provisioning.bundle import BundleFile, Manifest, decrypt_file
from provisioning.errors import FileAccessError, VerificationError
from provisioning.files import PRIVATE, shred, write_file
from provisioning.passphrase import PassphraseSource

__all__ = ["STATE_FILE", "install_bundle", "installed_state"]

STATE_FILE = ".bundle-state.json"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def installed_state(directory: Path) -> dict[str, Any] | None:
    """What the last installed bundle recorded in ``directory``, or None."""
    path = directory / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileAccessError(
            f"{path} is unreadable ({exc}); restore it (it holds the installed sequence number)"
        ) from exc
    if not isinstance(state, dict) or not isinstance(state.get("sequence"), int):
        raise FileAccessError(f"{path} has no sequence number; restore it")
    return state


def _check_newer(manifest: Manifest, state: dict[str, Any] | None) -> None:
    if state is None:
        return
    if state.get("site") != manifest.site:
        raise VerificationError(
            f"the directory holds site {state.get('site')!r}, the bundle is for {manifest.site!r}"
        )
    if state.get("gateway") != manifest.gateway:
        raise VerificationError(
            f"the directory holds gateway {state.get('gateway')!r}, the bundle is for "
            f"{manifest.gateway!r}; wrong bundle for this gateway?"
        )
    if manifest.sequence <= state["sequence"]:
        raise VerificationError(
            f"rollback refused: bundle sequence {manifest.sequence} is not newer than the "
            f"installed {state['sequence']}; install a newer bundle"
        )


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where unsupported."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _link_tree(src: Path, dst: Path) -> None:
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    for entry in src.iterdir():
        if entry.name == STATE_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dst / entry.name, symlinks=True, copy_function=link)
        else:
            link(str(entry), str(dst / entry.name))


def _scrub_old_keys(old: Path, replaced: set[str]) -> None:
    """Overwrite replaced private keys left only in the old tree, then drop the tree."""
    for rel in replaced:
        p = old / rel
        with contextlib.suppress(OSError):
            st = p.lstat()
            if (
                stat.S_ISREG(st.st_mode)
                and st.st_nlink == 1
                and stat.S_IMODE(st.st_mode) == PRIVATE
            ):
                shred(p)
    shutil.rmtree(old, ignore_errors=True)


def install_bundle(
    manifest: Manifest, target: Path, passphrase: PassphraseSource | None
) -> dict[str, Any]:
    """Write the bundle's files into ``target`` atomically; returns the new state."""
    target = target.absolute()
    existing = target.exists()
    if existing and not target.is_dir():
        raise FileAccessError(f"{target} is not a directory")
    state = installed_state(target) if existing else None
    _check_newer(manifest, state)
    plain: dict[str, bytes] = {}
    cache: dict[str, bytes] = {}
    secret = None
    for f in manifest.files:
        if f.nonce is not None:
            if secret is None:
                if passphrase is None:
                    raise VerificationError("the bundle holds encrypted keys: give a passphrase")
                secret = passphrase.read()
            plain[f.path] = decrypt_file(manifest, f, secret, cache)
        else:
            plain[f.path] = manifest.contents[f.path]
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.stage-", dir=target.parent))
    try:
        os.chmod(stage, 0o700)
        if existing:
            _link_tree(target, stage)
        for f in manifest.files:
            _write_member(stage, f, plain[f.path])
        new_state = {
            "sequence": manifest.sequence,
            "site": manifest.site,
            "gateway": manifest.gateway,
            "created": manifest.created,
            "installed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": {f.path: f.digest.hex() for f in manifest.files},
            "signer_kid": manifest.signer_kid.hex(),
        }
        text = json.dumps(new_state, indent=2, sort_keys=True).encode()
        write_file(stage / STATE_FILE, text, mode=PRIVATE)
        if not existing:
            os.rename(stage, target)
            return new_state
        if not _exchange(stage, target):
            old = stage.with_name(stage.name + ".old")
            os.rename(target, old)
            os.rename(stage, target)
            os.rename(old, stage)
    except BaseException:
        if stage.exists() and stage.resolve() != target.resolve():
            shutil.rmtree(stage, ignore_errors=True)
        raise
    replaced = {f.path for f in manifest.files}
    _scrub_old_keys(stage, replaced)  # the stage path now holds the previous directory
    return new_state


def _write_member(stage: Path, f: BundleFile, data: bytes) -> None:
    if hashlib.sha256(data).digest() != f.digest and f.nonce is None:
        raise VerificationError(f"{f.path}: digest mismatch while writing")
    dest = stage / f.path
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not dest.parent.resolve().is_relative_to(stage.resolve()):
        raise VerificationError(f"{f.path}: its directory is a link out of {stage.name}")
    with contextlib.suppress(FileNotFoundError):
        dest.unlink()  # a hard link to the old file: never write through it
    write_file(dest, data, mode=f.mode, overwrite=True)
