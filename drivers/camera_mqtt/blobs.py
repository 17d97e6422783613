"""Snapshots kept by their SHA-256 hex digest, least recently used dropped first.

Events carry only the digest (``data.snapshot``) so an alarm stays small; the gateway asks
:meth:`BlobStore.get` for the bytes and forwards them on their own rate-limited topic.
The store is bounded by count and by total bytes, so a camera re-sending snapshots cannot
grow memory.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

__all__ = ["BlobStore"]


class BlobStore:
    """At most ``max_items`` blobs and ``max_bytes`` bytes in all."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    def put(self, data: bytes) -> str:
        """Keep ``data``; return its digest (also when the store keeps nothing)."""
        digest = hashlib.sha256(data).hexdigest()
        if self.max_items == 0 or len(data) > self.max_bytes:
            return digest
        if digest in self._blobs:
            self._blobs.move_to_end(digest)
            return digest
        self._blobs[digest] = data
        self._size += len(data)
        while len(self._blobs) > self.max_items or self._size > self.max_bytes:
            _, old = self._blobs.popitem(last=False)
            self._size -= len(old)
        return digest

    def get(self, digest: str) -> bytes | None:
        """The blob, or None if never seen or already dropped; marks it recently used."""
        data = self._blobs.get(digest)
        if data is not None:
            self._blobs.move_to_end(digest)
        return data

    def __len__(self) -> int:
        return len(self._blobs)

    @property
    def size(self) -> int:
        """Bytes held."""
        return self._size
