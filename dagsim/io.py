"""Small I/O helpers: atomic writes so that an interrupted job never leaves a half-written file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from dagsim.errors import ValidationError


def current_umask() -> int:
    """The process umask (read by setting and restoring it: ``os`` has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike, *, directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would: 0o666 (files) or 0o777 (folders) minus the umask.

    ``tempfile.mkstemp``/``mkdtemp`` create 0600/0700 on purpose; an output renamed from them into place would
    otherwise be unreadable to the user's group.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        apply_umask(tmp)  # mkstemp creates 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf: a value that does not exist) replaced by ``None``,
    so that strict JSON (``allow_nan=False``) writes ``null`` instead of failing or writing a bare ``NaN``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """Serialize ``obj`` as JSON (NaN/inf refused) and write it atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def os_error_message(exc: OSError) -> str:
    """One line for an I/O error: what failed and on which path (the CLI prints it instead of a traceback)."""
    what = exc.strerror or str(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p]
    return f"{what}: {' -> '.join(paths)}" if paths else what


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """Fail fast (before any work) when ``path`` cannot be written as a file: it is a folder, a parent is a
    file, or the nearest existing parent folder is not writable. ``flag`` names the option in the message."""
    path = Path(path)
    if path.is_dir():
        raise ValidationError(f"{flag} {path}: is a folder; give a file name")
    return _check_writable_parent(path, path.parent, flag)


def _check_writable_parent(path: Path, start: Path, flag: str) -> Path:
    """``path`` when the nearest existing folder at or above ``start`` is a writable folder, else why not."""
    parent = start
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValidationError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(f"{flag} {path}: the folder {parent} is not writable")
    return path


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """Like :func:`check_output_file` for an output folder (it may exist as a folder)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValidationError(f"{flag} {path}: is a file; give a folder")
    return _check_writable_parent(path, path, flag)
