"""Files written whole or not at all, and names safe to use as one path component."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes, *, mode: int | None = None, fsync: bool = False) -> Path:
    """Write ``data`` to a unique temporary name beside ``path`` and rename it over ``path``.

    A reader sees the old file or the new one, never half of it; two writers of the same path do not share a
    temporary file (the last rename wins). The parent folder is created. The file gets ``mode`` (default: what
    a plain ``open(path, "w")`` would give under the current umask). A failed write leaves no temporary file.

    :param fsync: flush the data to disk before the rename (for state that must survive a power cut).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def safe_filename(name: object, keep: str = "") -> str:
    """``name`` as one safe path component: runs of characters other than ``A-Z a-z 0-9 . _ -`` (and ``keep``) become ``_``.

    Never empty, never ``.`` or ``..``, never containing a path separator.
    """
    keep = keep.replace("/", "").replace(os.sep, "")
    pattern = _UNSAFE if not keep else re.compile(f"[^A-Za-z0-9._{re.escape(keep)}-]+")
    text = pattern.sub("_", str(name)) or "_"
    return "_" * len(text) if text in (".", "..") else text
