"""Replace a folder as a whole: readers see the old folder or the new one, never a mix or half of one.

New content is written into a hidden sibling (`.staging-…`, which Spark, Hive and Athena skip) and then
swapped in with Linux's atomic RENAME_EXCHANGE; elsewhere two renames, with the old folder kept under a
hidden name until the new one is in place, so a crash never leaves the previous version unreadable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import uuid

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def staging_dir(final: str) -> str:
    """A fresh hidden folder beside `final`, on the same filesystem so that it can be renamed into place."""
    parent, name = os.path.split(final.rstrip("/"))
    os.makedirs(parent, exist_ok=True)
    path = os.path.join(parent, f".staging-{name}-{uuid.uuid4().hex[:12]}")
    os.makedirs(path)
    return path


def _exchange(first: str, second: str) -> bool:
    if _renameat2 is None:
        return False
    result = _renameat2(_AT_FDCWD, first.encode(), _AT_FDCWD, second.encode(), _RENAME_EXCHANGE)
    return result == 0


def publish_dir(staging: str, final: str) -> None:
    """Put `staging` in the place of `final` (which may not exist yet) and remove the old content."""
    final = final.rstrip("/")
    if not os.path.exists(final):
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.rename(staging, final)
        return
    if _exchange(staging, final):
        shutil.rmtree(staging)  # it now holds the previous version
        return
    parent, name = os.path.split(final)
    previous = os.path.join(parent, f".previous-{name}-{uuid.uuid4().hex[:12]}")
    os.rename(final, previous)
    os.rename(staging, final)
    shutil.rmtree(previous)


def discard_dir(staging: str) -> None:
    shutil.rmtree(staging, ignore_errors=True)
