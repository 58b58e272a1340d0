"""Atomic file writes: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file: either the old file (or none) or the complete new
one. A killed writer leaves at most a ``*.tmp`` file, which no reader in the kit opens and
the next writer of the same path replaces.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    The temporary name ends in ``.tmp`` so that globbing for ``*.safetensors`` or ``*.csv``
    never finds it. On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_text(obj: Any) -> str:
    """``obj`` as indented JSON, keys sorted (reruns give identical bytes); NaN is refused."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_jsonable, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (keys sorted, so reruns give identical bytes)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    """Fallback for numpy scalars and arrays, paths and tuples inside JSON payloads."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")


def write_many(files: dict[str | os.PathLike, str]) -> list[Path]:
    """Write several text files as one unit: every temporary file is written first, then all are
    renamed. If any write fails (a full disk, a read-only folder), none of the targets changes."""
    with contextlib.ExitStack() as stack:
        staged = [(stack.enter_context(atomic_path(path)), text) for path, text in files.items()]
        for tmp, text in staged:
            _stage(tmp, text)
    return [Path(p) for p in files]


def _stage(tmp: Path, text: str) -> None:
    """Write one temporary file of :func:`write_many` (fsync and rename are :func:`atomic_path`'s)."""
    tmp.write_text(text, encoding="utf-8")
