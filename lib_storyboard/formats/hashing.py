"""File hashes as A1111 shows them: sha256 of the whole file, and its first 10 hex digits as the short hash."""
from __future__ import annotations

import hashlib


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def short_hash(path: str) -> str:
    return sha256_file(path)[:10]
