"""Atomic file writes: a reader (the host's file watcher, another process) never sees a half-written file.

Write to a temporary file in the same folder, fsync, then `os.replace`, which is atomic on POSIX and Windows.
Inside `atomic_group()` several such writes replace their files together: each is written to its temporary first,
and only when all have succeeded are they moved into place, so a failure (a full disk) changes none of them.
A failed write leaves nothing behind: its temporary is removed, and so is any folder it had to create.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading

_group = threading.local()


def _make_folders(folder: str) -> list[str]:
    """Create `folder` and its missing parents; returns the ones created, outermost first."""
    missing, d = [], folder
    while not os.path.isdir(d):
        missing.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    os.makedirs(folder, exist_ok=True)
    return missing[::-1]


def _remove_folders(created: list[str]) -> None:
    for d in reversed(created):    # innermost first; a folder something else has written into stays
        with contextlib.suppress(OSError):
            os.rmdir(d)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside `path`; on success it replaces `path` (inside `atomic_group()`: when the
    group ends), on error it is removed."""
    folder = os.path.dirname(os.path.abspath(path))
    pending = getattr(_group, "pending", None)
    created = _make_folders(folder)
    if pending is not None:
        _group.created.extend(created)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should read like any file the user saves
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if pending is not None:
            pending.append((tmp, path))
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        if pending is None:
            _remove_folders(created)
        raise


@contextlib.contextmanager
def atomic_group():
    """Every `atomic_path` write inside the block replaces its file when the block ends, all in the order written;
    if the block raises, no file is replaced and the temporaries and new folders are removed. Nested groups join
    the outermost one. Per thread."""
    if getattr(_group, "pending", None) is not None:
        yield
        return
    _group.pending, _group.created = [], []
    try:
        yield
        pending = _group.pending
    except BaseException:
        for tmp, _ in _group.pending:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        _remove_folders(_group.created)
        raise
    finally:
        created = _group.created
        _group.pending = _group.created = None
    try:
        while pending:
            tmp, path = pending[0]
            os.replace(tmp, path)
            pending.pop(0)
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        _remove_folders(created)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
